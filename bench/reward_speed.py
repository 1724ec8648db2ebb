"""Latency of the reward API (``codedpo.execution.reward``) on GRPO-shaped batches, against the
same programs run in this process and against EvalPlus 0.3.1's ``untrusted_check``.

    .venv/bin/python bench/reward_speed.py [--sets demo leetcode humaneval] [--batches 5] \
        [--batch-size 64] [--workers 2] [--problems 16] [--out results.json]

A batch is what one GRPO step scores: ``batch-size / 8`` problems, 8 completions each, every
completion a chat answer (prose around a fenced block) whose code differs from every other
completion of the run (a statement with the sample's number is injected into the entry point, so
no cache serves it). Two workloads per set:

- **instant**: half correct (the reference solution), half wrong (the reference with
  ``return None`` at the top of its entry point): programs that finish at once;
- **mixed**: per 8 completions, 4 correct, 2 wrong, 1 hostile (reads ``/etc/shadow`` and forges
  result lines onto fds 3-5 on every call, then answers right) and 1 slow (an infinite loop).

Sets: ``demo`` (the problems the project ships; their tests have no reference times, so the
per-test limit is ``--test-seconds``, 1 s, instead of the executor's 10 s), ``leetcode``
(LeetCodeDataset v0.3.1 test, references from the file; per-test limits from the reference's
time, EvalPlus's rule max(1 s, 4 x reference)), ``humaneval`` (HumanEval+, the same rule). The
first ``--problems`` problems of each.

Measured, per set and workload (medians over ``--batches`` batches, after one warm-up batch; the
pool stays warm across batches, as in training):

- **ours**: ``ExecutionReward.score`` on the batch (bwrap, ``--workers``, default limits; it
  extracts the code from each response, runs every test, and classifies hacks), and the same
  call again (a second reward function on the same batch: served from the cache);
- **in-process** (instant only): the extracted code ``exec``-ed in this process, one thread,
  every test run and compared (call tests: the reference outputs, EvalPlus's comparison; assertion
  tests: each split assertion ``exec``-ed). Inputs are decoded and assertions compiled before the
  clock starts. No sandbox and no isolation: only our own correct and wrong programs run here;
  ``overhead`` is ours minus this, per completion (goal: at most ~5 ms);
- **EvalPlus** (``humaneval`` only; LeetCode's assertion tests are not EvalPlus's input/output
  shape): ``evalplus.eval.untrusted_check`` per program (one forked process each), ``--workers``
  at a time, on the same extracted code, with the same inputs, reference outputs and reference
  times (ours, from the expected-outputs cache), all inputs in one call (``evaluate`` makes two,
  base and plus) and its fast check (it stops at the first failing test; ours runs every test):
  both favour EvalPlus. Hostile programs are left out of its batch: unsandboxed, they would
  write into this process's pipes. ``ours vs EvalPlus`` = EvalPlus's time / ours (goal: >= 2).

Scratch files (expected outputs) go to a new directory under /tmp.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from codedpo.execution.compare import outputs_match
from codedpo.execution.files import write_expected
from codedpo.execution.reward import ExecutionReward, default_config
from codedpo.execution.sandbox import codec
from codedpo.problems.benchmark_formats import load_evalplus
from codedpo.problems.load import load_problems
from codedpo.problems.train_sources import load_leetcode

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GROUP = 8  # completions per problem in a batch (GRPO's num_generations)
INSTANT = ["correct", "wrong"] * (GROUP // 2)
MIXED = ["correct"] * 4 + ["wrong"] * 2 + ["hostile", "slow"]
HOSTILE = """try:
    open("/etc/shadow").read()
except OSError:
    pass
import os as _os
for _fd in (3, 4, 5):
    try:
        _os.write(_fd, b'{"i": 0, "v": null}\\n')
    except OSError:
        pass"""
LOOP = "while True:\n    pass"
INJECT = {"correct": "", "wrong": "return None", "hostile": HOSTILE, "slow": LOOP}


def load_set(name: str, shared: Path, limit: int) -> dict[str, dict]:
    if name == "demo":
        problems = list(load_problems(ROOT / "src/codedpo/data/demo/problems.jsonl").values())
    elif name == "leetcode":
        path = shared / "datasets/LeetCodeDataset/LeetCodeDataset-v0.3.1-test.jsonl.gz"
        problems = load_leetcode(path, split="test")
    else:
        problems = load_evalplus(shared / "benchmarks/HumanEvalPlus.jsonl.gz", "humaneval")
    return {p["task_id"]: p for p in problems[:limit]}


def inject(code: str, entry: str, statements: str) -> str:
    """``statements`` at the top of the entry point's body (a method of ``Solution`` included)."""
    name = entry.split(".")[-1]
    tree = ast.parse(code)
    scopes = [tree] + [n for n in tree.body if isinstance(n, ast.ClassDef)]
    kinds = ast.FunctionDef | ast.AsyncFunctionDef
    defs = [n for s in scopes for n in s.body if isinstance(n, kinds) and n.name == name]
    first = defs[-1].body[0]
    at = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])]) - 1
    lines = code.split("\n")
    new = [" " * first.col_offset + line for line in statements.split("\n")]
    return "\n".join(lines[:at] + new + lines[at:])


def program(problem: dict, kind: str, sample: str) -> str:
    body = f"_sample = {sample!r}" + ("\n" + INJECT[kind] if INJECT[kind] else "")
    return inject(problem["canonical_solution"], problem["entry_point"], body)


def respond(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code.rstrip()}\n```\n\nIt handles the edge cases."


def make_batch(problems: dict[str, dict], pattern: list[str], size: int, n: int,
               tag: str) -> list[tuple[str, str, str]]:  # fmt: skip
    """Batch ``n``: (task_id, kind, code); problems rotate from batch to batch."""
    ids = list(problems)
    per = max(1, size // GROUP)
    out = []
    for p in range(per):
        task = ids[(n * per + p) % len(ids)]
        for g, kind in enumerate(pattern):
            out.append((task, kind, program(problems[task], kind, f"{tag}-{n}-{p}-{g}")))
    return out


# -- the baselines ------------------------------------------------------------------------------
def prepared(problem: dict, expected: dict | None) -> dict:
    """What the in-process run needs, built before its clock starts."""
    tests = problem["tests"]
    if tests["kind"] == "call":
        outputs = (expected or {}).get("outputs") or [c.get("output") for c in tests["cases"]]
        pairs = zip(tests["cases"], outputs, strict=True)
        cases = [(codec.decode(c["input"]), codec.decode(o)) for c, o in pairs if o is not None]
        return {"cases": cases, "atol": tests.get("atol", 0.0), "check": tests.get("check")}
    return {"asserts": [compile(a, "<assert>", "exec") for a in tests["asserts"]]}


def in_process(problem: dict, code: str, prep: dict) -> bool:
    """Run every test of ``code`` here; True if all pass."""
    try:
        return _in_process(problem, code, prep)
    except Exception:  # the program did not load
        return False


def _in_process(problem: dict, code: str, prep: dict) -> bool:
    tests = problem["tests"]
    ns: dict = {"__name__": "solution"}
    exec(tests.get("prelude") or "", ns)
    exec(code, ns)
    if "cases" in prep:
        fn = ns[problem["entry_point"]]
        ok = 0
        for args, exp in prep["cases"]:
            try:
                out = fn(*args)
            except Exception:
                continue
            check = prep["check"] or "exact"
            ok += outputs_match(out, exp, args=args, atol=prep["atol"], check=check)
        return ok == len(prep["cases"])
    exec(tests.get("helpers") or "", ns)
    ns["candidate"] = eval(problem["entry_point"], ns)
    ok = 0
    for compiled in prep["asserts"]:
        try:
            exec(compiled, ns)
            ok += 1
        except Exception:
            pass
    return ok == len(prep["asserts"])


def evalplus_batch(problems: dict, expected: dict, batch: list, workers: int,
                   fast: bool) -> tuple[float, list[bool]]:  # fmt: skip
    """Seconds for EvalPlus's ``untrusted_check`` on every (task, kind, code) of ``batch``, and
    which programs it passed."""
    from evalplus.eval import PASS, untrusted_check  # noqa: PLC0415  (the bench extra)

    def one(item):
        task, _, code, _ = item
        tests, entry = problems[task]["tests"], expected[task]
        keep = [i for i, o in enumerate(entry["outputs"]) if o is not None]
        return untrusted_check(
            "humaneval", code, [codec.decode(tests["cases"][i]["input"]) for i in keep],
            problems[task]["entry_point"], [codec.decode(entry["outputs"][i]) for i in keep],
            tests.get("atol", 0.0), [entry["times"][i] or 0.0 for i in keep], fast_check=fast,
        )[0] == PASS  # fmt: skip

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = list(pool.map(one, batch))
    return time.perf_counter() - start, passed


# -- one set ------------------------------------------------------------------------------------
def time_workload(reward: ExecutionReward, name: str, workload: str, expected: dict,
                  args: argparse.Namespace) -> dict:  # fmt: skip
    """Median latencies of ``--batches`` batches of ``workload`` (after one warm-up batch)."""
    problems, pattern = reward.problems, INSTANT if workload == "instant" else MIXED
    fast = reward.config.fast_check
    warm = make_batch(problems, pattern, args.batch_size, 0, f"warm-{workload}-{fast}")
    reward.score([(t, respond(c)) for t, _, c in warm])
    ours, cached, inproc, evalplus, agree, ep_agree = [], [], [], [], 0, 0
    statuses: dict[str, dict[str, int]] = {}
    sandbox_s: dict[str, float] = {}  # per kind: the records' duration_s, per batch
    for n in range(args.batches):
        batch = make_batch(problems, pattern, args.batch_size, n, f"{workload}-{fast}")
        items = [(t, respond(c)) for t, _, c in batch]
        t0 = time.perf_counter()
        results = reward.score(items)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reward.score(items)  # a second reward function on the same batch
        cached.append(time.perf_counter() - t0)
        for (_, kind, _), r in zip(batch, results, strict=True):
            by = statuses.setdefault(kind, {})
            by[r.status] = by.get(r.status, 0) + 1
            retried = r.record.get("attempts", 1) > 1 or r.record.get("timeout_rerun")
            for flag, seen in (("retried", retried), ("hacks", r.hacks)):
                by[flag] = by.get(flag, 0) + bool(seen)
            spent = float(r.record.get("duration_s") or 0.0) / args.batches
            sandbox_s[kind] = sandbox_s.get(kind, 0.0) + spent
        if workload == "instant" and not fast:
            preps = {t: prepared(problems[t], expected.get(t)) for t, _, _ in batch}
            spent = 0.0
            for r in results:
                t0 = time.perf_counter()
                passed = in_process(problems[r.task_id], r.code, preps[r.task_id])
                spent += time.perf_counter() - t0
                agree += passed == (r.status == "passed")
            inproc.append(spent)
        if name == "humaneval" and (fast or workload == "instant"):
            both = zip(batch, results, strict=True)
            plain = [(t, k, r.code, r.status == "passed") for (t, k, _), r in both
                     if k != "hostile"]  # fmt: skip
            spent, passed = evalplus_batch(problems, expected, plain, args.workers, fast)
            evalplus.append(spent)
            ep_agree += sum(p == item[3] for p, item in zip(passed, plain, strict=True))
    row = {"set": name, "workload": workload, "tests": "fast check" if fast else "every test",
           "problems": len(problems), "batch": len(batch), "ours_s": statistics.median(ours),
           "cached_s": statistics.median(cached), "statuses": statuses,
           "sandbox_s_per_batch": {k: round(v, 3) for k, v in sandbox_s.items()},
           "runs_s": ours}  # fmt: skip
    if inproc:
        row["in_process_s"] = statistics.median(inproc)
        row["in_process_agree"] = f"{agree}/{args.batches * len(batch)}"
    if evalplus:
        row["evalplus_s"] = statistics.median(evalplus)
        row["evalplus_batch"] = len(plain)
        row["evalplus_agree"] = f"{ep_agree}/{args.batches * len(plain)}"
    print(json.dumps(row), file=sys.stderr)
    return row


def run_set(name: str, args: argparse.Namespace, work: Path) -> list[dict]:
    problems = load_set(name, args.shared, args.problems)
    config = default_config(args.workers)
    config = replace(config, limits=replace(config.limits, test_seconds=args.test_seconds))
    expected_path = work / f"{name}.expected.json"
    write_expected(problems, config, expected_path, progress=False)  # not timed
    expected = json.loads(expected_path.read_text())["tasks"]
    rows = []
    # EvalPlus's own setting (stop at the first failing test) only where EvalPlus runs.
    for fast in (False, True) if name == "humaneval" else (False,):
        with ExecutionReward(problems, replace(config, fast_check=fast),
                             expected_path=expected_path) as reward:  # fmt: skip
            for workload in ("instant", "mixed"):
                rows.append(time_workload(reward, name, workload, expected, args))
    return rows


def table(rows: list[dict]) -> str:
    head = ("| set | workload | tests run | batch | ours ms/batch | ours ms/completion | "
            "in-process ms/completion | overhead ms/completion | EvalPlus ms/batch | "
            "ours vs EvalPlus | cached ms/batch |")  # fmt: skip
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = r["batch"]
        ours = 1000 * r["ours_s"]
        inproc = r.get("in_process_s")
        ep = r.get("evalplus_s")
        cells = [r["set"], r["workload"], r["tests"], str(n), f"{ours:.0f}", f"{ours / n:.2f}",
                 f"{1000 * inproc / n:.2f}" if inproc is not None else "-",
                 f"{(ours - 1000 * inproc) / n:.2f}" if inproc is not None else "-",
                 f"{1000 * ep:.0f}" if ep is not None else "-",
                 f"{ep / r['ours_s']:.2f}" if ep is not None else "-",
                 f"{1000 * r['cached_s']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=["demo", "leetcode", "humaneval"],
                   choices=["demo", "leetcode", "humaneval"])  # fmt: skip
    p.add_argument("--batches", type=int, default=5, help="timed batches per workload")
    p.add_argument("--batch-size", type=int, default=64, help="completions per batch")
    p.add_argument("--workers", type=int, default=2, help="sandboxes (and EvalPlus processes)")
    p.add_argument("--problems", type=int, default=8,
                   help="problems per set, the first N (default: batch-size / 8, so every batch "
                   "holds the same problems)")  # fmt: skip
    p.add_argument("--test-seconds", type=float, default=1.0,
                   help="per-test limit where no reference time is known (the demo)")  # fmt: skip
    p.add_argument("--shared", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, help="the rows as JSON")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="reward-speed-"))
    rows = []
    for name in args.sets:
        rows += run_set(name, args, work)
    print(f"loadavg {os.getloadavg()[0]:.2f}, workers {args.workers}, batches {args.batches}, "
          f"batch size {args.batch_size}, problems per set {args.problems}")  # fmt: skip
    for r in rows:
        extra = "".join(f"; {who} agrees with ours on {r[key]}" for who, key in
                        (("in-process", "in_process_agree"), ("EvalPlus", "evalplus_agree"))
                        if key in r)  # fmt: skip
        print(f"{r['set']} {r['workload']} ({r['tests']}): statuses {r['statuses']}; sandbox s "
              f"per batch {r['sandbox_s_per_batch']}{extra}")  # fmt: skip
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
