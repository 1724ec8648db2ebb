"""Throughput of ``codedpo``'s sandboxed executor against EvalPlus 0.3.1's ``evalplus.evaluate``.

    python bench/executor_vs_evalplus.py --dataset humaneval [mbpp ...] --workers 2 [--limit N]
        [--mutants] [--repeats R] [--evalplus-test-details] [--always-equal] [--load N]
        [--out results.json]

For each dataset (``humaneval`` = HumanEval+ v0.1.10, ``mbpp`` = MBPP+ v0.2.0, ``humaneval_orig``
= the original HumanEval's ``check`` assertions, ``all`` = the three) the script builds one
sample set: every problem's canonical solution and, with ``--mutants``, eight mutants of it
(``return None``, an off-by-one output, ``raise``, an infinite loop, the answer as a string, an
early ``sys.exit(0)``, an ``int`` subclass equal to everything, the first argument returned), so
that passing, failing and timed-out samples are all timed (the issue's set: canonical + 8
mutants, one of them a timeout); ``--always-equal`` adds a sample returning
an object whose ``__eq__`` always answers True (EvalPlus compares inside the untrusted process and
is fooled by it). ``humaneval_orig`` is ours on the original HumanEval tests (its ``check``
functions, the ones with loops run by the judge) against EvalPlus ``--base-only`` on HumanEval+,
whose base inputs are the original tests. ``--load N`` keeps N busy processes running during
every timing (a loaded machine).
The samples file is written once (EvalPlus JSONL: ``task_id`` + ``solution``), then in one run:

1. both ground-truth caches are warmed, so that neither side is charged for computing expected
   outputs: EvalPlus's pickle in ``~/.cache/evalplus`` (keyed by the dataset file's md5) and our
   ``--expected`` file (``codedpo.execution.executor.write_expected``);
2. ``python -m evalplus.evaluate --dataset D --samples S --parallel W --i-just-wanna-run`` is timed
   as a subprocess, with ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` pointing at the local
   uncompressed dataset and a fresh results file every time (the time includes its interpreter
   start and imports, about 1 s);
3. ``execute_files`` (bwrap backend, the same number of workers, default limits, fresh output file)
   is timed in this process, together with loading the problems.

Each timing is repeated ``--repeats`` times and the median is reported. The table gives samples,
seconds, samples/second, the speed ratio ours/EvalPlus and both sides' pass counts; samples on
which the two disagree are listed by task id. EvalPlus counts a sample as passed when its base and
plus statuses are both ``pass``; ours when the record's ``status`` is ``passed``.

The datasets are read from ``../shared/benchmarks`` (``--data-dir``) and decompressed into the
work directory (``--workdir``, default a new directory under /tmp), never into the repository.
With ``--limit N`` only the first N problems are used; EvalPlus then gets a dataset file holding
just those problems (it insists that every problem has a sample), whose ground truth it computes
and caches under a new hash.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig, execute_files, write_expected
from codedpo.problems.benchmark_formats import load_evalplus, load_humaneval

DATA_FILES = {"humaneval": "HumanEvalPlus.jsonl.gz", "mbpp": "MbppPlus-v0.2.0.jsonl.gz",
              "humaneval_orig": "HumanEvalPlus.jsonl.gz"}  # fmt: skip
# What EvalPlus evaluates for each of our datasets.
EVALPLUS_DATASET = {"humaneval": "humaneval", "mbpp": "mbpp", "humaneval_orig": "humaneval"}
OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"  # ../shared/benchmarks
BASELINE = "EvalPlus 0.3.1 evalplus.evaluate"

# Appended after the solution, so that the last definition of the entry point wins.
MUTANTS = {
    "return_none": """

def {f}(*args, **kwargs):
    return None
""",
    "off_by_one": """

_bench_original_{f} = {f}


def {f}(*args, **kwargs):
    r = _bench_original_{f}(*args, **kwargs)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "x"
    if isinstance(r, list):
        return r + [None]
    if isinstance(r, tuple):
        return r + (None,)
    if r is None:
        return 0
    return None
""",
    "raise": """

def {f}(*args, **kwargs):
    raise ValueError("mutant")
""",
    "infinite_loop": """

def {f}(*args, **kwargs):
    while True:
        pass
""",
    "as_string": """

_bench_original_{f} = {f}


def {f}(*args, **kwargs):
    return str(_bench_original_{f}(*args, **kwargs))
""",
    "exit_early": """

import sys as _bench_sys


def {f}(*args, **kwargs):
    _bench_sys.exit(0)
""",
    "int_subclass": """

class _BenchInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def {f}(*args, **kwargs):
    return _BenchInt(0)
""",
    "first_arg": """

def {f}(*args, **kwargs):
    return args[0] if args else None
""",
}
ALWAYS_EQUAL = """

class _BenchAlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def {f}(*args, **kwargs):
    return _BenchAlwaysEqual()
"""


# -- sample set ------------------------------------------------------------------------------------
def prepare_dataset(dataset: str, data_dir: Path, workdir: Path, limit: int | None) -> Path:
    """The uncompressed dataset (first ``limit`` problems) in ``workdir``, byte-exact lines."""
    with gzip.open(data_dir / DATA_FILES[dataset], "rb") as fh:
        raw = fh.read()
    if limit is not None:
        lines = [line for line in raw.splitlines(keepends=True) if line.strip()]
        raw = b"".join(lines[:limit])
    path = workdir / f"{dataset}.jsonl"
    path.write_bytes(raw)
    if dataset == "humaneval_orig":  # ours reads the original HumanEval's tests
        with gzip.open(data_dir / "HumanEval.jsonl.gz", "rb") as fh:
            orig = [line for line in fh.read().splitlines(keepends=True) if line.strip()]
        (workdir / "HumanEval.jsonl").write_bytes(b"".join(orig[:limit] if limit else orig))
    return path


def build_samples(problems: list[dict], mutants: bool, always_equal: bool) -> list[dict]:
    samples = []
    for p in problems:
        code, f = p["canonical_solution"], p["entry_point"]
        kinds = {"canonical": code}
        if mutants:
            kinds.update({k: code + m.format(f=f) for k, m in MUTANTS.items()})
        if always_equal:
            kinds["always_equal"] = code + ALWAYS_EQUAL.format(f=f)
        for kind, solution in kinds.items():
            samples.append({"task_id": p["task_id"], "sample_id": f"{p['task_id']}#{kind}",
                            "kind": kind, "solution": solution})  # fmt: skip
    return samples


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")


# -- EvalPlus --------------------------------------------------------------------------------------
def evalplus_env(dataset: str, dataset_path: Path) -> dict:
    env = dict(os.environ)
    env[OVERRIDE_ENV[dataset]] = str(dataset_path)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


WARM_EVALPLUS = """
import sys
from evalplus.evaluate import get_groundtruth
from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash
from evalplus.data import get_mbpp_plus, get_mbpp_plus_hash
from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
if sys.argv[1] == "humaneval":
    get_groundtruth(get_human_eval_plus(), get_human_eval_plus_hash(), [])
else:
    get_groundtruth(get_mbpp_plus(), get_mbpp_plus_hash(), MBPP_OUTPUT_NOT_NONE_TASKS)
"""


def warm_evalplus(dataset: str, dataset_path: Path, log: Path) -> float:
    """Compute (or load) EvalPlus's ground truth exactly as ``evaluate`` does; returns seconds."""
    t0 = time.perf_counter()
    dataset = EVALPLUS_DATASET[dataset]
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-c", WARM_EVALPLUS, dataset], check=True,
                       env=evalplus_env(dataset, dataset_path), stdout=fh, stderr=fh,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def time_evalplus(dataset: str, dataset_path: Path, samples_path: Path, workers: int,
                  test_details: bool, log: Path) -> tuple[float, float, dict]:  # fmt: skip
    """Seconds until the results file appears, seconds until the process exits, the results.

    ``evaluate`` starts a non-daemon ``stucking_checker`` thread that sleeps in 20 s steps, so the
    process lingers up to 20 s after writing its results; the first figure leaves that out.
    """
    result_path = Path(str(samples_path).replace(".jsonl", "_eval_results.json"))
    result_path.unlink(missing_ok=True)  # fresh results: never "Load from previous results"
    base_only = dataset == "humaneval_orig"
    dataset = EVALPLUS_DATASET[dataset]
    cmd = [sys.executable, "-m", "evalplus.evaluate", "--dataset", dataset, "--samples",
           str(samples_path), "--parallel", str(workers), "--i-just-wanna-run"]  # fmt: skip
    if test_details:
        cmd.append("--test-details")
    if base_only:
        cmd.append("--base-only")
    done = None
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=evalplus_env(dataset, dataset_path), stdout=fh,
                                stderr=fh, stdin=subprocess.DEVNULL)  # fmt: skip
        while proc.poll() is None:
            if done is None and result_path.exists():
                done = time.perf_counter() - t0
            time.sleep(0.02)
        exited = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"evalplus.evaluate failed (exit {proc.returncode}); see {log}")
    with open(result_path, encoding="utf-8") as fh:
        results = json.load(fh)
    return (done if done is not None else exited), exited, results


def evalplus_verdicts(results: dict, samples: list[dict]) -> dict[str, tuple]:
    """sample_id -> (base_status, plus_status).

    EvalPlus lists each task's samples in file order (``completion_id``).
    """
    seen: dict[str, int] = {}
    out = {}
    for s in samples:
        k = seen.get(s["task_id"], 0)
        seen[s["task_id"]] = k + 1
        r = results["eval"][s["task_id"]][k]
        out[s["sample_id"]] = (r["base_status"], r["plus_status"])
    return out


# -- ours ------------------------------------------------------------------------------------------
def exec_config(workers: int, fast_check: bool = True) -> ExecConfig:
    # Like for like: EvalPlus stops at a sample's first failing test unless --test-details, and
    # our fast check does the same between ranges of tests.
    return ExecConfig(sandbox=SandboxConfig(backend="bwrap"), workers=workers,
                      fast_check=fast_check)  # fmt: skip


def load_problems(dataset: str, dataset_path: Path) -> dict[str, dict]:
    if dataset == "humaneval_orig":
        return {p["task_id"]: p for p in load_humaneval(dataset_path.parent / "HumanEval.jsonl")}
    return {p["task_id"]: p for p in load_evalplus(dataset_path, dataset)}


def warm_ours(dataset: str, dataset_path: Path, expected: Path, workers: int) -> float:
    t0 = time.perf_counter()
    write_expected(load_problems(dataset, dataset_path), exec_config(workers), expected,
                   progress=False)  # fmt: skip
    return time.perf_counter() - t0


def time_ours(dataset: str, dataset_path: Path, samples_path: Path, expected: Path,
              workers: int, out: Path,
              fast_check: bool = True) -> tuple[float, dict[str, dict]]:  # fmt: skip
    out.unlink(missing_ok=True)
    out.with_name(out.name + ".partial").unlink(missing_ok=True)  # never resume
    t0 = time.perf_counter()
    problems = load_problems(dataset, dataset_path)
    execute_files(problems, [samples_path], out, exec_config(workers, fast_check),
                  expected_path=expected, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    records = {}
    with open(out, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            records[rec["sample_id"]] = rec
    return seconds, records


# -- the run ---------------------------------------------------------------------------------------
def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` busy-looping processes: the other jobs of a loaded machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_dataset(dataset: str, args: argparse.Namespace, workdir: Path) -> dict:
    wd = workdir / dataset
    wd.mkdir(parents=True, exist_ok=True)
    dataset_path = prepare_dataset(dataset, args.data_dir, wd, args.limit)
    problems = load_evalplus(dataset_path, EVALPLUS_DATASET[dataset])
    samples = build_samples(problems, args.mutants, args.always_equal)
    samples_path = wd / "samples.jsonl"
    write_jsonl(samples_path, samples)
    expected = wd / "expected.json"
    print(f"[{dataset}] {len(problems)} problems, {len(samples)} samples in {samples_path}",
          flush=True)  # fmt: skip

    warm_ep = warm_evalplus(dataset, dataset_path, wd / "warm_evalplus.log")
    print(f"[{dataset}] EvalPlus ground truth ready ({warm_ep:.1f} s)", flush=True)
    warm_us = warm_ours(dataset, dataset_path, expected, args.workers)
    print(f"[{dataset}] codedpo expected outputs ready ({warm_us:.1f} s)", flush=True)

    load = start_load(args.load)
    ep_times, ep_exit, us_times, ep_load, us_load = [], [], [], [], []
    ep_results: dict = {}
    us_records: dict = {}
    for rep in range(args.repeats):
        ep_load.append(loadavg())
        sec, exit_sec, ep_results = time_evalplus(dataset, dataset_path, samples_path,
                                                  args.workers, args.evalplus_test_details,
                                                  wd / f"evalplus_{rep}.log")  # fmt: skip
        ep_times.append(sec)
        ep_exit.append(exit_sec)
        print(f"[{dataset}] EvalPlus run {rep + 1}: {sec:.1f} s to its results file, "
              f"{exit_sec:.1f} s to exit", flush=True)  # fmt: skip
        us_load.append(loadavg())
        sec, us_records = time_ours(dataset, dataset_path, samples_path, expected,
                                    args.workers, wd / "executions.jsonl",
                                    fast_check=not args.evalplus_test_details)  # fmt: skip
        us_times.append(sec)
        print(f"[{dataset}] codedpo run {rep + 1}: {sec:.1f} s", flush=True)

    stop_load(load)
    ep_status = evalplus_verdicts(ep_results, samples)
    # --base-only (humaneval_orig): EvalPlus writes no plus status; its verdict is the base one.
    base_only = dataset == "humaneval_orig"
    ep_pass = {sid: st[0] == "pass" and (base_only or st[1] == "pass")
               for sid, st in ep_status.items()}  # fmt: skip
    us_pass = {sid: rec["status"] == "passed" for sid, rec in us_records.items()}
    by_kind: dict[str, dict] = {}
    for s in samples:
        k = by_kind.setdefault(s["kind"], {"samples": 0, "evalplus_passed": 0, "ours_passed": 0})
        k["samples"] += 1
        k["evalplus_passed"] += ep_pass[s["sample_id"]]
        k["ours_passed"] += us_pass[s["sample_id"]]
    disagreements = [
        {"sample_id": s["sample_id"], "task_id": s["task_id"], "kind": s["kind"],
         "evalplus_passed": ep_pass[s["sample_id"]], "evalplus_status": ep_status[s["sample_id"]],
         "ours_passed": us_pass[s["sample_id"]],
         "ours_status": us_records[s["sample_id"]]["status"],
         "ours_first_failure": us_records[s["sample_id"]].get("first_failure")}
        for s in samples if ep_pass[s["sample_id"]] != us_pass[s["sample_id"]]
    ]  # fmt: skip
    ep_sec, us_sec = statistics.median(ep_times), statistics.median(us_times)
    n = len(samples)
    return {
        "dataset": dataset,
        "problems": len(problems),
        "samples": n,
        "workers": args.workers,
        "load_processes": args.load,
        "repeats": args.repeats,
        "mutants": args.mutants,
        "always_equal": args.always_equal,
        "evalplus_test_details": args.evalplus_test_details,
        "warm_seconds": {"evalplus": round(warm_ep, 2), "ours": round(warm_us, 2)},
        "evalplus": {"seconds": round(ep_sec, 2), "all_seconds": [round(t, 2) for t in ep_times],
                     "seconds_to_exit": round(statistics.median(ep_exit), 2),
                     "all_seconds_to_exit": [round(t, 2) for t in ep_exit],
                     "samples_per_s": round(n / ep_sec, 3),
                     "passed": sum(ep_pass.values()), "loadavg_before": ep_load},
        "ours": {"seconds": round(us_sec, 2), "all_seconds": [round(t, 2) for t in us_times],
                 "samples_per_s": round(n / us_sec, 3),
                 "passed": sum(us_pass.values()), "loadavg_before": us_load,
                 "status_counts": _counts(r["status"] for r in us_records.values())},
        "speed_ratio_ours_over_evalplus": round(ep_sec / us_sec, 3),
        "by_kind": by_kind,
        "disagreements": disagreements,
        "ours_sandbox_errors": [sid for sid, rec in us_records.items()
                                if rec["status"] == "sandbox_error"],
    }  # fmt: skip


def _counts(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def print_table(results: list[dict]) -> None:
    head = (f"{'dataset':<10} {'samples':>7} {'EvalPlus s':>10} {'EvalPlus/s':>10} "
            f"{'EP exit s':>9} {'ours s':>8} {'ours/s':>8} {'ratio':>6} {'EP pass':>8} "
            f"{'ours pass':>9}")  # fmt: skip
    print(f"\nbaseline: {BASELINE} (median of the repeats; ratio = ours/EvalPlus samples/s)")
    print("EvalPlus s: until its results file is written; EP exit s: until the process exits")
    print(head)
    print("-" * len(head))
    for r in results:
        ep, us = r["evalplus"], r["ours"]
        print(f"{r['dataset']:<10} {r['samples']:>7} {ep['seconds']:>10.1f} "
              f"{ep['samples_per_s']:>10.2f} {ep['seconds_to_exit']:>9.1f} "
              f"{us['seconds']:>8.1f} {us['samples_per_s']:>8.2f} "
              f"{r['speed_ratio_ours_over_evalplus']:>6.2f} {ep['passed']:>8} "
              f"{us['passed']:>9}")  # fmt: skip
    for r in results:
        print(f"\n[{r['dataset']}] pass counts by sample kind (EvalPlus / ours):")
        for kind, k in r["by_kind"].items():
            print(f"  {kind:<13} {k['evalplus_passed']:>4} / {k['ours_passed']:<4} "
                  f"of {k['samples']}")  # fmt: skip
        print(f"  ours by status: {r['ours']['status_counts']}")
        if r["disagreements"]:
            print(f"  disagreements ({len(r['disagreements'])}):")
            for d in r["disagreements"]:
                ff = d["ours_first_failure"] or {}
                why = f"{d['ours_status']}: {str(ff.get('message', ''))[:80]}" if ff else "passed"
                base, plus = d["evalplus_status"]
                print(f"    {d['task_id']:<16} {d['kind']:<13} EvalPlus base {base}, "
                      f"plus {plus}; ours {why}")  # fmt: skip
        else:
            print("  no disagreements")
        if r["ours_sandbox_errors"]:
            print(f"  ours: sandbox_error (infrastructure, not a verdict) on "
                  f"{r['ours_sandbox_errors']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    # The executor's failure messages repr() wrong answers in this (trusted) process; an int past
    # 4300 digits (off-by-one of HumanEval/139's special_factorial) raises ValueError there and
    # ends the whole run. Lift Python's int-to-str limit here so the benchmark can finish.
    sys.set_int_max_str_digits(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("humaneval", "mbpp", "humaneval_orig", "both", "all"),
                   nargs="+", default=["humaneval"],
                   help="one or more sets, timed one after the other in this run")  # fmt: skip
    p.add_argument("--load", type=int, default=0,
                   help="busy processes kept running during every timing (a loaded machine)")
    p.add_argument("--workers", type=int, default=2, help="parallel workers for both sides")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument(
        "--mutants",
        action="store_true",
        help="add return-None, off-by-one and raise mutants of each solution",
    )
    p.add_argument(
        "--always-equal",
        action="store_true",
        help="add a sample returning an object whose __eq__ is always True",
    )
    p.add_argument("--repeats", type=int, default=1, help="timings per side (median reported)")
    p.add_argument(
        "--evalplus-test-details",
        action="store_true",
        help="run EvalPlus with --test-details (every test, like ours) instead of "
        "its default fast check (stop at the first failure)",
    )
    p.add_argument("--data-dir", type=Path, default=SHARED, help="default: ../shared/benchmarks")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="scratch directory (default: a new one under /tmp)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)  # fmt: skip
    if args.repeats < 1 or args.workers < 1:
        p.error("--repeats and --workers must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="codedpo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {workdir}", flush=True)
    groups = {"both": ["humaneval", "mbpp"], "all": ["humaneval", "mbpp", "humaneval_orig"]}
    datasets = list(dict.fromkeys(d for name in args.dataset for d in groups.get(name, [name])))
    results = [run_dataset(d, args, workdir) for d in datasets]
    print_table(results)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"baseline": BASELINE, "command": sys.argv, "cpus": os.cpu_count(),
                  "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
