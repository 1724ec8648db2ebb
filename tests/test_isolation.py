"""Two executions on one machine share nothing: process slots, IPC, files (real bubblewrap)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codedpo.execution.backends import UID_BASE

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.getuid() != 0,
    reason="sandbox uids are per sandbox only when bubblewrap runs as root",
)

PROBLEM = {"task_id": "t/add", "prompt": "add", "entry_point": "add",
           "canonical_solution": "def add(a, b):\n    return a + b\n",
           "tests": {"kind": "call", "cases": [{"input": [1, 2], "output": 3}]}}  # fmt: skip
# Holds its sandbox's process slots: 62 sleeping children, one short of the 64 a sample may have,
# until the test kills it (HOLD: limits that outlast any test), not for a fixed time that a
# loaded machine could outlast.
HOLDER = """import os, time


def add(a, b):
    for _ in range(62):
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
    open("/tmp/run/holding", "w").close()
    time.sleep(3600)
    return a + b
"""
HOLD = ["--test-seconds", "600", "--min-test-seconds", "600", "--sample-seconds", "600"]
# A correct answer that forks once, as many real solutions do (multiprocessing, subprocess).
FORKS_ONCE = """import os


def add(a, b):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return a + b
"""


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _execute(tmp: Path, name: str, samples: list[dict], *limits: str) -> subprocess.Popen:
    problems = _write(tmp / "problems.jsonl", [PROBLEM])
    sample_file = _write(tmp / f"{name}.samples.jsonl", samples)
    cmd = [sys.executable, "-m", "codedpo", "execute", "--problems", str(problems),
           "--samples", str(sample_file), "--out", str(tmp / f"{name}.jsonl"),
           "--backend", "bwrap", "--workers", "2", "--test-seconds", "30", *limits,
           "--no-progress"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _holding_processes(base: int = 60_000) -> int:
    """Processes of sandbox uids (above any uid a system hands out)."""
    n = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid >= base:
                    n += 1
            except OSError:
                pass
    return n


def _hold(tmp_path: Path) -> subprocess.Popen:
    """A run whose two samples hold their process slots until it is killed."""
    holder = _execute(tmp_path, "holder", [
        {"task_id": "t/add", "sample_id": f"hold{i}", "solution": HOLDER} for i in range(2)
    ], *HOLD)  # fmt: skip
    deadline = time.monotonic() + 120
    while _holding_processes() < 120:
        if holder.poll() is not None or time.monotonic() > deadline:
            holder.kill()
            raise AssertionError(f"the holder never took its process slots: {holder.communicate()}")
        time.sleep(0.1)
    return holder


def test_concurrent_runs_do_not_starve_each_other(tmp_path):
    holder = _hold(tmp_path)
    try:
        other = _execute(tmp_path, "other", [
            {"task_id": "t/add", "sample_id": f"s{i}", "solution": FORKS_ONCE} for i in range(12)
        ])  # fmt: skip
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        records = [json.loads(line) for line in (tmp_path / "other.jsonl").read_text().splitlines()]
        assert [r["status"] for r in records] == ["passed"] * 12, records
        # still holding them now that the other run is done: it ran beside the held slots
        assert _holding_processes() >= 120 and holder.poll() is None
    finally:
        holder.kill()
        holder.communicate()


def test_a_killed_run_leaves_no_sandbox_behind(tmp_path):
    holder = _hold(tmp_path)
    holder.kill()  # SIGKILL: nothing of the parent runs any more
    holder.communicate()
    deadline = time.monotonic() + 30  # the kernel ends each sandbox as its namespace goes
    while _holding_processes(UID_BASE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _holding_processes(UID_BASE) == 0
