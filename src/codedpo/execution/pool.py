"""Trusted-side handles on warm sandbox workers."""

from __future__ import annotations

import json
import os
import queue
import resource
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from codedpo.execution.backends import (
    SANDBOX_ENV,
    SandboxConfig,
    runtime_paths,
    sandbox_uid,
    worker_command,
)

# A reply is one JSON line; cap it so that a flood cannot exhaust the parent's memory. The
# worker itself caps a sample's reports at Limits.results_bytes (256 MiB); quoted inside a reply
# they grow by at most 2x.
MAX_REPLY_BYTES = 576 * 2**20


class _Launcher:
    """Starts every sandbox from one long-lived thread of this process.

    bwrap's ``--die-with-parent`` (``PR_SET_PDEATHSIG``) fires when the *thread* that started the
    sandbox ends, not the process: a sandbox started from a short-lived worker thread (a judge
    started on first use, a sandbox restarted after a fault) would die with that thread, and the
    next sample on it would need a second attempt. A process forked from this one gets a
    launcher of its own."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._lock = None, threading.Lock()  # the thread stayed in the parent

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="codedpo-sandbox-launcher")
            pool = self._pool
        return pool.submit(subprocess.Popen, *args, **kwargs).result()


_LAUNCHER = _Launcher()


class SandboxFault(RuntimeError):
    """The sandbox itself failed (did not start, died, broke the protocol)."""


class Sandbox:
    """One warm worker process under the configured backend."""

    def __init__(self, config: SandboxConfig, slot: int) -> None:
        self.config = config
        self.slot = slot
        self.proc: subprocess.Popen | None = None
        self.loaded: set[str] = set()
        self._buf = b""
        self._stderr = None
        self._run_dir: str | None = None

    def start(self) -> None:
        self.close()
        if self.config.backend == "process":
            self._run_dir = tempfile.mkdtemp(prefix=f"codedpo-run{self.slot}-")
        cmd = worker_command(self.config, self.slot, self._run_dir)
        self._stderr = tempfile.TemporaryFile()
        stack = self.config.stack_mb * 2**20
        # The CPUs of the thread that asks (the launcher thread starts it, with its own).
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

        def limits() -> None:
            # The stack limit must be set before the interpreter starts: the kernel places the
            # memory map below the stack by this limit at exec time.
            resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        try:
            self.proc = _LAUNCHER.popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=dict(SANDBOX_ENV),
                cwd="/",
                start_new_session=True,
                preexec_fn=limits,
            )
        except OSError as exc:
            raise SandboxFault(f"cannot start sandbox ({cmd[0]}): {exc}") from exc
        self._buf = b""
        self.loaded = set()
        hello = {"op": "hello", "path": runtime_paths(self.config)}
        if self.config.backend == "bwrap" and os.getuid() == 0:
            hello["uid"] = sandbox_uid(self.config, self.proc.pid)
        reply = self.request(hello, timeout=60)
        if not reply.get("ok"):
            raise SandboxFault(f"sandbox did not greet: {reply}")
        self.info = reply

    def stderr_tail(self, n: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - n))
        return self._stderr.read().decode(errors="replace")

    def request(self, msg: dict, timeout: float) -> dict:
        self.send(msg)
        return self.read(timeout)

    def send(self, msg: dict) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise SandboxFault(f"sandbox is not running: {self.stderr_tail()}")
        data = (json.dumps(msg) + "\n").encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise SandboxFault(f"sandbox closed its input: {self.stderr_tail()}") from exc

    def read(self, timeout: float) -> dict:
        """The next reply line."""
        line = self._readline(timeout)
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SandboxFault(f"sandbox sent a malformed reply: {line[:200]!r}") from exc
        if not isinstance(reply, dict):
            raise SandboxFault("sandbox reply is not an object")
        return reply

    def _readline(self, timeout: float) -> bytes:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        chunks = [self._buf]
        size = len(self._buf)
        newline = self._buf.find(b"\n")
        # Search only each new chunk: replies reach 100+ MB (HumanEval/130), and rescanning the
        # whole buffer per read would be quadratic.
        while newline < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                self._buf = b"".join(chunks)
                raise SandboxFault(f"sandbox did not answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                self.proc.wait(timeout=5)
                raise SandboxFault(
                    f"sandbox exited (code {self.proc.returncode}): {self.stderr_tail()}"
                )
            at = chunk.find(b"\n")
            if at >= 0:
                newline = size + at
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise SandboxFault("sandbox reply exceeds the size limit")
        data = b"".join(chunks)
        self._buf = data[newline + 1 :]
        return data[:newline]

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None


class Slot:
    """What one worker thread uses: the solution's sandbox, and a judge's sandbox when a problem's
    own test code must run (started on first use; it never runs a solution)."""

    def __init__(self, config: SandboxConfig, index: int) -> None:
        self.index = index
        self.solution = Sandbox(config, 2 * index)
        self._judge = Sandbox(config, 2 * index + 1)

    def judge(self) -> Sandbox:
        if self._judge.proc is None:
            self._judge.start()
        return self._judge

    def close(self) -> None:
        self.solution.close()
        self._judge.close()


class SandboxPool:
    """``workers`` slots; :meth:`acquire` lends one to a thread at a time."""

    def __init__(self, config: SandboxConfig, workers: int) -> None:
        self.config = config
        self.size = max(1, workers)
        self._free: queue.Queue[Slot] = queue.Queue()
        self._all: list[Slot] = []

    def __enter__(self) -> SandboxPool:
        for index in range(self.size):
            slot = Slot(self.config, index)
            slot.solution.start()
            self._all.append(slot)
            self._free.put(slot)
        return self

    def __exit__(self, *exc) -> None:
        for slot in self._all:
            slot.close()

    @contextmanager
    def acquire(self) -> Iterator[Slot]:
        slot = self._free.get()
        try:
            yield slot
        finally:
            self._free.put(slot)
