"""Timed-out samples under load: how many re-runs at once keep verdicts from flipping.

    python bench/timeout_reruns.py --workers 2 --load 0 2 4 --parallel 1 2 [--slow 24] [--loops 8]

A machine shared with other jobs starves a sample of CPU, and a correct but slow answer then runs
over its time limit. The executor re-runs a timed-out sample only when it was starved (its
process got less than 80% of its wall time on a CPU while the machine had less than half a core
idle), at most ``--parallel-reruns`` at a time, while the other workers go on.

The sample set: ``--slow`` correct answers that need about 0.6 s of CPU per test against a 1 s
limit (they must pass: a timeout is a flipped verdict) and ``--loops`` infinite loops (they must
time out, without a re-run when they had the CPU). For each background load (busy processes, the
"other jobs") and each ``--parallel-reruns`` value, one run of ``execute_files`` (bwrap) reports
its wall time, the flipped slow answers and the re-runs. The baseline is the same run with
timeouts never re-run (``retry_timeouts=False``), which shows how many verdicts load flips.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig, Limits, execute_files
from codedpo.problems.load import load_problems

# About 0.6 s of CPU per call on this project's 2-core machines (calibrated below).
SLOW = "def f(x):\n    n = 0\n    for i in range({n}):\n        n += i & x\n    return x\n"
LOOP = "def f(x):\n    while True:\n        pass\n"


def calibrate(target: float = 0.6) -> int:
    """Loop count that takes ``target`` seconds of CPU here, alone."""
    code = SLOW.format(n=2_000_000)
    ns: dict = {}
    exec(code, ns)
    t0 = time.process_time()
    ns["f"](3)
    per = (time.process_time() - t0) / 2_000_000
    return int(target / per)


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def one_run(tmp: Path, workers: int, load: int, parallel: int, rerun: bool) -> dict:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        config = ExecConfig(sandbox=SandboxConfig(backend="bwrap"),
                            limits=Limits(test_seconds=1.0, sample_seconds=10.0),
                            workers=workers, retry_timeouts=rerun,
                            parallel_reruns=parallel)  # fmt: skip
        out = tmp / "out.jsonl"
        out.unlink(missing_ok=True)
        start = time.monotonic()
        execute_files(load_problems(tmp / "problems.jsonl"), [tmp / "samples.jsonl"], out,
                      config, progress=False)  # fmt: skip
        seconds = time.monotonic() - start
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    slow = [r for r in records if r["sample_id"].startswith("slow")]
    loops = [r for r in records if r["sample_id"].startswith("loop")]
    return {
        "load": load, "parallel_reruns": parallel if rerun else None, "seconds": round(seconds, 1),
        "slow_flipped": sum(r["status"] != "passed" for r in slow),
        "loops_not_timeout": sum(r["status"] != "timeout" for r in loops),
        "reruns": sum(bool(r.get("timeout_rerun")) for r in records),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--load", type=int, nargs="+", default=[0, 2, 4])
    p.add_argument("--parallel", type=int, nargs="+", default=[1, 2])
    p.add_argument("--slow", type=int, default=24)
    p.add_argument("--loops", type=int, default=8)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    n = calibrate()
    tmp = Path(tempfile.mkdtemp(prefix="codedpo-reruns-"))
    cases = [{"input": [k], "output": k} for k in range(3)]
    write(tmp / "problems.jsonl", [{"task_id": "t/f", "prompt": "", "entry_point": "f",
                                    "tests": {"kind": "call", "cases": cases}}])  # fmt: skip
    samples = [{"task_id": "t/f", "sample_id": f"slow{i}", "solution": SLOW.format(n=n)}
               for i in range(args.slow)]  # fmt: skip
    samples += [{"task_id": "t/f", "sample_id": f"loop{i}", "solution": LOOP}
                for i in range(args.loops)]  # fmt: skip
    write(tmp / "samples.jsonl", samples)
    rows = []
    for load in args.load:
        rows.append(one_run(tmp, args.workers, load, 1, rerun=False))
        for parallel in args.parallel:
            rows.append(one_run(tmp, args.workers, load, parallel, rerun=True))
    print(f"{len(samples)} samples ({args.slow} correct at ~0.6 s CPU per 1 s test, "
          f"{args.loops} infinite loops), {args.workers} workers, {os.cpu_count()} CPUs")
    print(f"{'load':>4} {'re-runs at once':>16} {'s':>7} {'slow flipped':>13} "
          f"{'loops not timeout':>18} {'re-runs':>8}")  # fmt: skip
    for r in rows:
        par = "never" if r["parallel_reruns"] is None else str(r["parallel_reruns"])
        print(f"{r['load']:>4} {par:>16} {r['seconds']:>7.1f} {r['slow_flipped']:>13} "
              f"{r['loops_not_timeout']:>18} {r['reruns']:>8}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "loop_count": n}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
