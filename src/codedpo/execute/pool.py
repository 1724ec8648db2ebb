"""Trusted-side handles on warm sandbox workers."""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from codedpo.execute.sandbox import SandboxConfig, worker_command

# A reply is one JSON line; cap it so that a flood cannot exhaust the parent's memory.
MAX_REPLY_BYTES = 256 * 2**20


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
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxFault(f"cannot start sandbox ({cmd[0]}): {exc}") from exc
        self._buf = b""
        self.loaded = set()
        reply = self.request({"op": "hello"}, timeout=60)
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
        if self.proc is None or self.proc.poll() is not None:
            raise SandboxFault(f"sandbox is not running: {self.stderr_tail()}")
        data = (json.dumps(msg) + "\n").encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise SandboxFault(f"sandbox closed its input: {self.stderr_tail()}") from exc
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


class SandboxPool:
    """``workers`` warm sandboxes; :meth:`acquire` lends one to a thread at a time."""

    def __init__(self, config: SandboxConfig, workers: int) -> None:
        self.config = config
        self.size = max(1, workers)
        self._free: queue.Queue[Sandbox] = queue.Queue()
        self._all: list[Sandbox] = []

    def __enter__(self) -> SandboxPool:
        for slot in range(self.size):
            box = Sandbox(self.config, slot)
            box.start()
            self._all.append(box)
            self._free.put(box)
        return self

    def __exit__(self, *exc) -> None:
        for box in self._all:
            box.close()

    @contextmanager
    def acquire(self) -> Iterator[Sandbox]:
        box = self._free.get()
        try:
            yield box
        finally:
            self._free.put(box)
