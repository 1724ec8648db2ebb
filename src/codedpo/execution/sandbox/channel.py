"""A forked child as the worker sees it: its process and its report channel (stdlib only).

The channel is read as reports arrive, split into lines without re-copying long partial lines
(a 124 MB value arrives in 4 MB pieces), with every byte counted against the sample's cap. What
the child tried that the sandbox contains arrives as ``{"audit": kind}`` lines, kept apart.
"""

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import time

IPC_RMID = 0
_TICK = os.sysconf("SC_CLK_TCK")


# The clock gives back at most this many times a test's limit for waits on a CPU (a backstop:
# the sample's own processes are subtracted already), so a test ends by (1 + MAX_CREDIT) x limit.
MAX_CREDIT = 10.0


def _descendants(root: int) -> list[int] | None:
    """Every descendant of ``root`` (``/proc/PID/task/TID/children``), or None where the kernel
    does not list children."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except FileNotFoundError:
                if pid == root:
                    return None
                continue
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def _session(leader: int, pid1: bool) -> list[int]:
    """Processes of ``leader``'s session (as PID 1 of a namespace: every process but this one)."""
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            if pid1:
                out.append(int(name))
                continue
            with open(f"/proc/{name}/stat", "rb") as fh:
                if int(fh.read().rsplit(b")", 1)[1].split()[3]) == leader:
                    out.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _stat_cpu(pid: int) -> float:
    """User + system CPU seconds of a whole process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _wipe(path: str) -> None:
    """Remove everything under ``path`` (not ``path`` itself)."""

    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, onerror=onerror)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass


def _remove_ipc() -> None:
    """Remove SysV IPC objects left in this IPC namespace (none, when seccomp is on)."""
    libc = None
    for kind, func in (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 2:
                continue
            libc = libc or ctypes.CDLL(None, use_errno=True)
            ident = int(fields[1])
            if kind == "sem":
                getattr(libc, func)(ident, 0, IPC_RMID)
            else:
                getattr(libc, func)(ident, IPC_RMID, None)


def _read_capped(path: str, cap: int, tail: bool = False) -> tuple[str, int]:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if tail and size > cap:
                fh.seek(size - cap)
            data = fh.read(cap)
    except OSError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size


# The protocol's input, watched while a child runs: when the parent dies, so does the sandbox.
# (PR_SET_PDEATHSIG does not reach the init of a PID namespace here.)
PARENT = None


class Child:
    """A forked child and the worker's end of its report channel."""

    def __init__(self, pid: int, fd: int, sock: socket.socket | None) -> None:
        self.pid = pid
        self.fd = fd
        self.sock = sock
        self.start = time.monotonic()
        self.partial: list[bytes] = []
        self.lines: list[bytes] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.status: int | None = None
        self.cpu = 0.0
        self.killed = False
        self.audits: set[str] = set()
        self._wait, self._wait_read, self.schedstat = 0.0, 0.0, False
        self._others, self._others_read = 0.0, 0.0
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def waited(self, fresh: bool = False) -> float:
        """Seconds the child spent runnable but waiting for a CPU (``/proc/PID/schedstat``):
        time a loaded machine took from it, which its clock gives back. Re-read at most every
        20 ms unless ``fresh``; 0.0 where the kernel does not keep it."""
        now = time.monotonic()
        if fresh or now - self._wait_read >= 0.02:
            self._wait_read = now
            try:
                with open(f"/proc/{self.pid}/schedstat", "rb") as fh:
                    self._wait = int(fh.read().split()[1]) / 1e9
                self.schedstat = True
            except (OSError, ValueError, IndexError):
                pass
        return self._wait

    def credit(self, pid1: bool, fresh: bool = False) -> float:
        """The part of :meth:`waited` that load from outside the sample caused: the clock gives
        that back, never the time the sample's own other threads and processes took (a fork or
        thread bomb starves its own main thread; crediting that would stretch its limit without
        end). Their CPU time is subtracted; a lone single-threaded sample keeps it all."""
        waited = self.waited(fresh)
        if waited < 0.001:
            return waited
        return max(0.0, waited - self.others_cpu(pid1))

    def others_cpu(self, pid1: bool) -> float:
        """CPU seconds of the sample's tasks other than its main thread: its other threads, and
        every other process it started (the worker's descendants: as PID 1 of its namespace, or
        as a child subreaper, the sample's orphans are its children too). Re-read at most every
        20 ms; the cost follows the sample's own processes, not the machine's."""
        now = time.monotonic()
        if now - self._others_read < 0.02:
            return self._others
        self._others_read = now
        total = 0.0
        try:
            with open(f"/proc/{self.pid}/schedstat", "rb") as fh:
                main_thread = int(fh.read().split()[0]) / 1e9
            total += max(0.0, _stat_cpu(self.pid) - main_thread)
        except (OSError, ValueError, IndexError):
            pass
        others = _descendants(os.getpid())
        if others is None:  # the kernel lists no children: every process (as PID 1) or its session
            others = _session(self.pid, pid1)
        for pid in others:
            if pid != self.pid:
                try:
                    total += _stat_cpu(pid)
                except (OSError, ValueError, IndexError):
                    continue
        self._others = total
        return total

    def poll_exit(self) -> bool:
        if self.status is None:
            try:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.status = 0
                return True
            if pid == self.pid:
                self.status = status
                self.cpu = usage.ru_utime + usage.ru_stime
        return self.status is not None

    def wait(self, timeout: float, cap: int) -> list[bytes]:
        """Complete report lines that arrive within ``timeout`` s (may be none).

        Stops at end of file or when the child exits; ``self.size`` counts every byte read.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        lines: list[bytes] = self.lines
        self.lines = []
        while not lines:
            if self.eof or self.killed:
                return lines
            left = deadline - time.monotonic()
            if left <= 0:
                return lines
            watch = [self.fd] if self.pidfd is None else [self.fd, self.pidfd]
            if PARENT is not None:
                watch.append(PARENT.fd)
            poll = left if self.pidfd is not None else min(left, 0.01)
            ready, _, _ = select.select(watch, [], [], poll)
            if PARENT is not None and PARENT.fd in ready:
                PARENT.fill()  # raises ParentGone at end of file: the parent died
            if self.fd in ready:
                chunk = os.read(self.fd, 1 << 22)
                if not chunk:
                    self.eof = True
                    self._feed(b"", final=True)
                else:
                    self._feed(chunk)
                    if self.size > cap:
                        break
            elif self.poll_exit():
                # Exited: drain what it wrote; a daemon it left may keep the pipe open.
                self._drain()
            lines, self.lines = self.lines, []
        return lines

    def _feed(self, chunk: bytes, final: bool = False) -> None:
        """Split arriving bytes into lines without re-copying a long partial line (a 124 MB
        record arrives in 4 MB pieces)."""
        if chunk:
            self.size += len(chunk)
            self.chunks.append(chunk)
        start = 0
        while True:
            at = chunk.find(b"\n", start)
            if at < 0:
                break
            head = b"".join(self.partial) + chunk[start:at] if self.partial else chunk[start:at]
            self.partial = []
            if head.startswith(b'{"audit": "') and len(head) < 64:
                self.audits.add(head[11:-2].decode("ascii", "replace"))  # what it tried
            else:
                self.lines.append(head)
            start = at + 1
        if start < len(chunk):
            self.partial.append(chunk[start:])
        if final and self.partial:
            self.lines.append(b"".join(self.partial))
            self.partial = []

    def _drain(self) -> None:
        os.set_blocking(self.fd, False)
        try:
            while True:
                chunk = os.read(self.fd, 1 << 22)
                if not chunk:
                    break
                self._feed(chunk)
        except BlockingIOError:
            pass
        self.eof = True

    def send(self, obj: dict) -> bool:
        try:
            self.sock.sendall((json.dumps(obj) + "\n").encode())
            return True
        except OSError:
            return False

    def kill(self) -> None:
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass


