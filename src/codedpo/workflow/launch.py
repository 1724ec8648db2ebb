"""Run one job's command so that it stops when told, with every process it starts.

    codedpo launch -- accelerate launch --config_file configs/accelerate/cpu.yaml -m codedpo train

The rules run their long jobs (training, sampling, execution) through this launcher. It
stays the parent of the command and

- on SIGINT, SIGTERM or SIGHUP sends SIGTERM to every process of the job (the whole tree of
  ``accelerate launch``: its ranks, data-loader workers, the executor's sandboxes), then SIGKILL
  to what is left after ``--grace`` seconds, and exits 128 + the signal;
- watches the snakemake process that runs the job (``CODEDPO_WATCH_PID``, set by
  rules/common.smk, else its own parent) and stops the job the same way when it is gone, so a
  SIGKILLed snakemake leaves no job writing into outputs that the rerun will redo;
- is a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): processes whose parent died are
  re-parented to it rather than to init, so nothing escapes the tree it stops; and it dies with
  its own parent (``PR_SET_PDEATHSIG``);
- after the command exits, stops whatever the command left running and exits with its status.

``forward_stop_signals()`` is the snakemake side (rules/common.smk, ``onstart``): SIGINT or
SIGTERM sent to snakemake alone (``kill PID``, not a terminal's Ctrl-C, which reaches every
process) is passed to the launchers of the running jobs before snakemake's own handling, which
waits for running jobs (SIGTERM: "finish running jobs"; SIGINT: cancel).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time

import psutil

from codedpo.verbs import command_parser

WATCH_ENV = "CODEDPO_WATCH_PID"
GRACE_S = 10.0
POLL_S = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def identity(pid: int) -> str | None:
    """``pid:start-time``: a pid alone may be reused by another process after it exits."""
    try:
        return f"{pid}:{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return None


def _watched() -> str | None:
    """The snakemake process to outlive, if it is one of our ancestors; else our parent."""
    given = os.environ.get(WATCH_ENV, "")
    try:
        pid = int(given.split(":")[0])
        if any(p.pid == pid for p in psutil.Process().parents()) and identity(pid) == given:
            return given
    except (ValueError, psutil.Error):
        pass
    return identity(os.getppid())


def _alive(ident: str | None) -> bool:
    """Whether the process ``identity`` named still runs (a zombie has exited)."""
    if ident is None:
        return True
    pid = int(ident.split(":")[0])
    try:
        return identity(pid) == ident and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _reap() -> None:
    """Collect exited children, re-parented orphans included (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exited(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until ``procs`` have exited (zombies count: psutil's own wait does not return for
    a zombie it cannot reap); returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        alive = [p for p in procs if not _exited(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def stop_tree(grace: float = GRACE_S) -> int:
    """SIGTERM every descendant of this process, SIGKILL what is left after ``grace`` seconds;
    returns how many processes were signalled."""
    procs = psutil.Process().children(recursive=True)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    for proc in _wait(procs, grace):
        try:
            proc.kill()
        except psutil.Error:
            pass
    _wait(procs, 5)
    return len(procs)


def run(command: list[str], grace: float = GRACE_S) -> int:
    """Run ``command`` under the rules above; returns the exit status."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    parent = os.getppid()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    stop: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda s, _f: stop.append(s))
    if os.getppid() != parent:  # the parent died before PDEATHSIG was armed
        stop.append(signal.SIGTERM)
    watched = _watched()
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"codedpo launch: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    status = None
    while status is None:
        # Reap everything: re-parented orphans too (we are their subreaper).
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child.pid:
                status = os.waitstatus_to_exitcode(wait_status)
                child.returncode = status
        if status is not None:
            break
        why = None
        if stop:
            why = signal.Signals(stop[0]).name
        elif not _alive(watched):
            why = "snakemake is gone"
        if why:
            n = len(psutil.Process().children(recursive=True))
            shown = shlex.join(command)
            print(
                f"codedpo launch: {why}: stopping {shown[:100]}{'...' * (len(shown) > 100)} "
                f"(pid {child.pid}) and its {n - 1} other process(es)",
                file=sys.stderr,
                flush=True,
            )
            stop_tree(grace)
            return 128 + (stop[0] if stop else signal.SIGTERM)
        time.sleep(POLL_S)
    leftover = stop_tree(grace=2.0)
    if leftover:
        print(f"codedpo launch: stopped {leftover} process(es) left running", file=sys.stderr)
    return status if status >= 0 else 128 - status


def forward_stop_signals() -> None:
    """In snakemake: on SIGINT/SIGTERM, first SIGTERM the launchers of running jobs, then do
    what snakemake does (it installs its SIGTERM handler before ``onstart`` runs)."""
    me = os.getpid()

    def handler(signum, frame, previous):
        for proc in psutil.Process(me).children(recursive=True):
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if _is_launcher(cmdline):
                try:
                    proc.terminate()
                except psutil.Error:
                    pass
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(me, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        try:
            signal.signal(signum, lambda s, f, p=previous: handler(s, f, p))
        except ValueError:  # not the main thread: leave snakemake's handling as it is
            return


def _is_launcher(cmdline: list[str]) -> bool:
    """``codedpo launch ...`` (a console script: ``python .../codedpo launch``) or ``python -m
    codedpo.workflow.launch ...``."""
    head = cmdline[:4]
    return "codedpo.workflow.launch" in head or (
        "launch" in head and any(os.path.basename(a) == "codedpo" for a in head)
    )


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("launch", __doc__)
    parser.add_argument(
        "--grace", type=float, default=GRACE_S, help="seconds between SIGTERM and SIGKILL"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    return run(command, args.grace)
