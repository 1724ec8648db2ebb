"""What running tests outside the untrusted process costs, per sample, on real assertion sets.

    python bench/judged_cost.py [--sets humaneval mbpp leetcode] [--workers 2] [--limit N]
        [--runtime resources/runtime/judge] [--out results.json]

Every test of an assertion problem crosses the trust boundary in one of two ways (see
``codedpo.execution.plan``): a *split* assertion sends only the call of the function under test
into the solution's sandbox and compares its value in the parent; a *judged* test runs the
problem's own test code in a judge process, relaying each call to the solution's sandbox. Judged
tests are what moved the last checks out of the untrusted process; this script measures what
they cost against split ones on the same sets, in one run.

For each set (``humaneval`` = the original HumanEval ``check`` functions, ``mbpp`` = the original
MBPP test problems, ``leetcode`` = LeetCodeDataset v0.3.1 test) it runs every canonical solution
and one wrong mutant of it (``raise ValueError``, as a wrong answer that fails its first test)
through ``execute_files`` (bwrap, default limits, reference-timed per-test limits, fast check) and
prints, per mode, the tasks, the samples, and the mean sandbox time per sample (the sum of the
runs' durations: the solution's sandbox and, for judged tests, the judge's). The baseline is the
split mode on the same set, in the same run.

Datasets are read from ``../shared`` (``--shared``); scratch files go to a new directory under /tmp.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig, execute_files, write_expected
from codedpo.problems.benchmark_formats import load_humaneval, load_mbpp
from codedpo.problems.train_sources import load_leetcode

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def load_set(name: str, shared: Path, limit: int | None) -> dict[str, dict]:
    if name == "humaneval":
        problems = load_humaneval(shared / "benchmarks" / "HumanEval.jsonl.gz")
    elif name == "mbpp":
        problems = load_mbpp(shared / "benchmarks" / "mbpp.jsonl.gz")
    else:
        path = shared / "datasets" / "LeetCodeDataset" / "LeetCodeDataset-v0.3.1-test.jsonl.gz"
        problems = load_leetcode(path, split="test")
    problems = [p for p in problems if p.get("canonical_solution")][:limit]
    return {p["task_id"]: p for p in problems}


def mutant(problem: dict) -> str:
    """The reference with its entry point raising at once (a wrong answer, same loading cost)."""
    entry = problem.get("entry_point") or "f"
    name = entry.split(".")[-1]
    if entry.startswith("Solution()."):
        return (problem["canonical_solution"] + "\n\nclass Solution(Solution):\n"
                f"    def {name}(self, *a, **k):\n        raise ValueError('mutant')\n")
    raising = f"\n\ndef {name}(*a, **k):\n    raise ValueError('mutant')\n"
    return problem["canonical_solution"] + raising


def run_set(name: str, args: argparse.Namespace, work: Path) -> dict:
    problems = load_set(name, args.shared, args.limit)
    config = ExecConfig(sandbox=SandboxConfig(backend="bwrap", runtime=args.runtime),
                        workers=args.workers, fast_check=True)  # fmt: skip
    expected = work / f"{name}.expected.json"
    write_expected(problems, config, expected, progress=False)  # warm: not timed below
    samples = work / f"{name}.samples.jsonl"
    with open(samples, "w", encoding="utf-8") as fh:
        for task_id, problem in problems.items():
            for kind, code in (("canonical", problem["canonical_solution"]),
                               ("raise", mutant(problem))):  # fmt: skip
                fh.write(json.dumps({"task_id": task_id, "sample_id": f"{task_id}#{kind}",
                                     "solution": code}) + "\n")  # fmt: skip
    out = work / f"{name}.executions.jsonl"
    start = time.perf_counter()
    execute_files(problems, [samples], out, config, expected_path=expected, progress=False)
    wall = time.perf_counter() - start
    modes: dict[str, dict] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        mode = "judged" if rec.get("judged_tests") else "split"
        kind = rec["sample_id"].rsplit("#", 1)[1]
        m = modes.setdefault(mode, {"tasks": set(), "durations": [], "passed": {}})
        m["tasks"].add(rec["task_id"])
        m["durations"].append(float(rec["duration_s"]))
        m["passed"][kind] = m["passed"].get(kind, 0) + (rec["status"] == "passed")
    return {"set": name, "problems": len(problems), "wall_s": round(wall, 1),
            "modes": {k: {"tasks": len(v["tasks"]), "samples": len(v["durations"]),
                          "mean_ms": round(1000 * statistics.fmean(v["durations"]), 1),
                          "passed": v["passed"]}
                      for k, v in sorted(modes.items())}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", choices=("humaneval", "mbpp", "leetcode"),
                   default=["humaneval", "mbpp", "leetcode"])  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="only the first N problems per set")
    p.add_argument("--runtime", default="resources/runtime/judge",
                   help="the judge runtime (LeetCode's references import sortedcontainers)")
    p.add_argument("--shared", type=Path, default=SHARED, help="default: ../shared")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not Path(args.runtime).is_dir():
        p.error(f"--runtime {args.runtime}: not built (make setup, or codedpo runtime)")
    args.runtime = str(Path(args.runtime).resolve())
    with tempfile.TemporaryDirectory(prefix="codedpo-judged-") as tmp:
        results = [run_set(name, args, Path(tmp)) for name in args.sets]
    print("baseline: split assertions on the same set, same run (mean sandbox ms per sample)")
    print(f"{'set':10} {'mode':7} {'tasks':>5} {'samples':>7} {'mean ms':>8} {'vs split':>8}"
          f"  passed (canonical / raise)")  # fmt: skip
    for r in results:
        split = r["modes"].get("split", {}).get("mean_ms")
        for mode, m in r["modes"].items():
            ratio = f"{m['mean_ms'] / split:.2f}x" if split else "-"
            print(f"{r['set']:10} {mode:7} {m['tasks']:5d} {m['samples']:7d} {m['mean_ms']:8.1f} "
                  f"{ratio:>8}  {m['passed'].get('canonical', 0)} / {m['passed'].get('raise', 0)}")
        print(f"{r['set']:10} wall {r['wall_s']} s for {r['problems']} problems x 2 samples")
    if args.out is not None:
        args.out.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
