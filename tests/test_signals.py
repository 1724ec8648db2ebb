"""Runs stop when told: `codedpo launch` stops a job's whole process tree, and SIGINT, SIGTERM or
SIGKILL sent to a running snakemake ends its training job within seconds, leaves no process
behind, and the rerun writes the same tables as the uninterrupted demo. Real processes only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from workflow_helpers import snakemake, snakemake_env

CODEDPO = [sys.executable, "-m", "codedpo"]

# A job's process tree at its worst: a child in its own session (out of reach of a process-group
# signal) that ignores SIGINT and SIGTERM, and a double-forked daemon whose parent has exited.
TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    pids = sys.argv[2]
    def note():
        with open(os.path.join(pids, str(os.getpid())), "w"):
            pass
    if sys.argv[1] == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        note()
        time.sleep(600)
    elif sys.argv[1] == "root":
        note()
        subprocess.Popen([sys.executable, __file__, "stubborn", pids], start_new_session=True)
        if os.fork() == 0:
            if os.fork() == 0:
                note()
                time.sleep(600)
            os._exit(0)
        if sys.argv[3:] == ["exit"]:  # exit 3 once the whole tree is up, leaving it behind
            while len(os.listdir(pids)) < 3:
                time.sleep(0.05)
            sys.exit(3)
        time.sleep(600)
    """
)


def _pids(directory: Path, count: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [int(p.name) for p in directory.iterdir()]
        if len(found) == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} processes, found {list(directory.iterdir())}")


def _running(pids) -> list[int]:
    def up(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [pid for pid in pids if up(pid)]


def _wait_gone(pids, timeout: float) -> float:
    start = time.monotonic()
    while _running(pids) and time.monotonic() - start < timeout:
        time.sleep(0.1)
    assert not _running(pids), f"still running: {_running(pids)}"
    return time.monotonic() - start


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    pids = tmp_path / "pids"
    pids.mkdir()
    return script, pids


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_launch_stops_the_whole_tree_on_a_signal(tmp_path, signum):
    script, pids = _tree(tmp_path)
    proc = subprocess.Popen(
        [*CODEDPO, "launch", "--grace", "1", "--", sys.executable, str(script), "root", str(pids)]
    )
    tree = _pids(pids, 3)
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == 128 + signum
    _wait_gone(tree, timeout=5)


def test_launch_passes_the_status_on_and_stops_what_is_left(tmp_path):
    script, pids = _tree(tmp_path)
    status = subprocess.run(
        [*CODEDPO, "launch", "--grace", "1", "--", sys.executable, str(script), "root",
         str(pids), "exit"],
        timeout=60,
    ).returncode  # fmt: skip
    assert status == 3
    left = [int(p.name) for p in pids.iterdir()]
    assert len(left) == 3  # the root, the stubborn child and the daemon were all running
    _wait_gone(left, timeout=5)


def test_launch_stops_when_the_process_it_serves_is_killed(tmp_path):
    """What a SIGKILLed snakemake leaves: its shell and the job. The launcher watches the
    snakemake process named in CODEDPO_WATCH_PID (here a stand-in parent) and stops the job."""
    script, pids = _tree(tmp_path)
    parent = textwrap.dedent(
        f"""
        import os, subprocess, sys
        from codedpo.workflow import launch
        os.environ[launch.WATCH_ENV] = launch.identity(os.getpid())
        subprocess.run(["bash", "-c", "{sys.executable} -m codedpo launch --grace 1 -- "
                        "{sys.executable} {script} root {pids}; echo done"])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    tree = _pids(pids, 3)
    shell = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.kill()
    proc.wait()
    took = _wait_gone(tree + shell, timeout=15)
    print(f"job tree gone {took:.1f} s after SIGKILL of its parent")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_training(proc: subprocess.Popen, log: Path, timeout: float = 300) -> list[int]:
    """The job's process tree once its rank has logged a first optimizer step (the recipes log
    every step): training under way, past its imports and model loading, many steps from done."""
    deadline = time.monotonic() + timeout
    while "'loss'" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert proc.poll() is None, "snakemake ended before training logged a step"
        assert time.monotonic() < deadline, f"no training step in {log} after {timeout} s"
        time.sleep(0.1)
    tree = _descendants(proc.pid)
    commands = []
    for child in tree:
        try:
            commands.append(child.cmdline())
        except psutil.Error:
            continue
    assert any(c[1:4] == ["-m", "codedpo", "train"] for c in commands), commands  # the rank
    return [p.pid for p in tree]


@pytest.mark.workflow
def test_interrupted_snakemake_stops_training_and_resumes_to_the_same_tables(demo, tmp_path):
    workdir = tmp_path / "demo"
    shutil.copytree(demo, workdir, symlinks=True)
    # One checkpoint to retrain: train_rft for demo-codeqwen, then its evaluation and the tables.
    # (Snakemake redoes a missing intermediate file only for a job that needs it: the tables.)
    for rel in ("results/checkpoints/demo-codeqwen/rft",
                "results/eval/demo-codeqwen/rft", "results/tables"):
        shutil.rmtree(workdir / rel)
    # Ctrl-C in a terminal (SIGINT to the process group), then SIGINT, SIGTERM and SIGKILL to
    # snakemake alone (kill PID; a scheduler's or a login node's kill).
    for name, signum, group in [("Ctrl-C", signal.SIGINT, True), ("SIGINT", signal.SIGINT, False),
                                ("SIGTERM", signal.SIGTERM, False),
                                ("SIGKILL", signal.SIGKILL, False)]:  # fmt: skip
        log = workdir / "logs/train_rft/demo-codeqwen/rft.log"
        log.unlink(missing_ok=True)  # the demo's, or the last attempt's
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workdir,
            # the rank's step lines reach its log as they are printed
            env={**snakemake_env(), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        tree = _wait_for_training(proc, log)
        start = time.monotonic()
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        took = _wait_gone(tree, timeout=30)
        status = proc.wait(timeout=30)
        print(f"{name}: training and every job process gone in {took:.1f} s (exit {status})")
        assert status != 0
        assert time.monotonic() - start < 30
        # stopped, not finished (the checkpoint directory is renamed into place when done)
        assert not (workdir / "results/checkpoints/demo-codeqwen/rft/train_summary.json").exists()
        if signum == signal.SIGKILL:
            snakemake(workdir, "--unlock")  # a SIGKILLed snakemake leaves its lock behind
        else:
            # the failed job and the launcher's line from its log, on the console
            log = proc.stderr.read()
            assert "Error in rule train_rft" in log and "codedpo launch: SIG" in log, log
    snakemake(workdir, "--rerun-incomplete")
    for name in ("table1", "table2"):
        for ext in ("csv", "md", "tex"):
            rel = f"results/tables/{name}.{ext}"
            assert (workdir / rel).read_bytes() == (demo / rel).read_bytes(), rel
