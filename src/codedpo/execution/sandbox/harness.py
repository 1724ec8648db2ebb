"""The warm worker inside a sandbox (stdlib only, like the modules beside it).

One worker serves a whole batch of samples. For every sample it forks a fresh child (the code in
:mod:`child`) under resource limits, and reads what the child reports on a pipe as it happens.
The worker never compares anything: it ships raw reports back to the trusted parent, which
decides every verdict. Expected outputs never reach it.

The worker is the clock. It times each test from the outside (the interval between the child's
consecutive reports), kills the child when a test or the whole sample runs over its limit, and
reports where: no signal handler, caught exception or ignored alarm inside can stretch a limit.
It also caps the bytes a child may report, so a result too large to carry is the model's
``output_exceeded``, not a broken channel.

Protocol (JSON lines; requests on stdin, replies on stdout)::

    {"op": "hello", "uid": U, "path": [...]}          -> {"ok": true, "pid", "uid", "seccomp"}
    {"op": "problem", "key": K, "mode": ..., ...}      -> {"ok": true}
    {"op": "run", "key": K, "code": C, "limits": L}    -> {"runs": [...]}
    {"op": "serve", "key": K, "code": C, "limits": L}  -> {"loaded": true} | {"runs": [...]}
    {"op": "call", "target": T, "args": A, "limit": s} -> {"v"|"exc"|"bad": ..., "t": s}
                                                          | {"timeout"|"exceeded"|"died": true}
    {"op": "end"}                                      -> {"runs": [...]}
    {"op": "judge", "key": K, "limits": L}             -> {"relay": {"call": {...}, "i": n}}
        ... (each answered by {"op": "reply", ...} from the parent), then {"judged": {...}}

When the worker is PID 1 of its own PID namespace (bwrap ``--as-pid-1``) no process inside the
namespace can signal it, and ``kill(-1, SIGKILL)`` after each sample removes every process the
sample left behind, daemons included. Elsewhere it is a child subreaper and sweeps its children.
A seccomp filter (:mod:`seccomp`) keeps samples from creating SysV IPC objects or memfds, the
memory that RLIMIT_AS would not count; whatever IPC object exists anyway is removed after each
sample, with every file the sample wrote.
"""

import ctypes
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import sys
import time
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audit  # noqa: E402
import channel  # noqa: E402
import child  # noqa: E402
import codec  # noqa: E402
import seccomp  # noqa: E402
from channel import Child, _read_capped, _remove_ipc, _wipe  # noqa: E402
from sessions import Sessions  # noqa: E402

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
MAX_PROBLEMS = 16
_INDEX = re.compile(rb'^\{"i": (\d+)')
# Slack past a limit before the worker kills: process start-up and report latency, not user time.
GRACE = 0.05


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Worker(Sessions):
    def __init__(self, pid1: bool, nproc: int, run_dir: str, wipe_root: str) -> None:
        self.pid1 = pid1
        self.nproc = nproc
        self.run_dir = run_dir
        self.wipe_root = wipe_root
        self.seccomp = False
        # Decoded tests of recent problems; bounded, since a batch may span a whole benchmark
        # (HumanEval+ has 122,683 inputs). The parent re-sends a problem that fell out.
        self.problems: OrderedDict[str, dict] = OrderedDict()
        self.session: Child | None = None
        self.session_limits: dict = {}
        # What a sample may read without it being an attempt on what the sandbox hides: the
        # interpreter, the harness, the runtime, its own process and devices.
        self.allowed_reads = tuple(sorted({sys.prefix, sys.base_prefix, os.path.dirname(
            os.path.abspath(__file__)), "/runtime", "/dev/", "/proc/self/", "/usr/", "/lib",
            "/etc/localtime", "/etc/ld.so"}))  # fmt: skip

    # -- children --------------------------------------------------------------------------
    def _fork(self, body, limits: dict, cpu_seconds: float, stdin_data: str | None = None,
              duplex: bool = False) -> Child:  # fmt: skip
        _wipe(self.wipe_root)
        os.makedirs(self.run_dir, exist_ok=True)
        stdin_path = None
        if stdin_data is not None:
            stdin_path = os.path.join(self.run_dir, ".stdin")
            with open(stdin_path, "w", encoding="utf-8") as fh:
                fh.write(stdin_data)
        sock = None
        if duplex:
            sock, theirs = socket.socketpair()
            mine_fd, their_fd = sock.fileno(), theirs.fileno()
        else:
            mine_fd, their_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(mine_fd)
                self._child_setup(limits, cpu_seconds, stdin_path, their_fd)
                body()
            except BaseException:  # noqa: BLE001 - the child must not fall back into the worker
                pass
            os._exit(0)
        if duplex:
            theirs.close()
        else:
            os.close(their_fd)
        return Child(pid, mine_fd, sock)

    def _child_setup(self, limits: dict, cpu_seconds: float, stdin_path: str | None,
                     channel: int) -> None:  # fmt: skip
        os.setsid()
        os.chdir(self.run_dir)
        fd_in = os.open(stdin_path or "/dev/null", os.O_RDONLY)
        fd_out = os.open(".stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fd_err = os.open(".stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for src, dst in ((fd_in, 0), (fd_out, 1), (fd_err, 2), (channel, 3)):
            os.dup2(src, dst)
            os.close(src)
        os.closerange(4, 65536)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        for sig in (signal.SIGXFSZ, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        mem = limits["memory_bytes"]
        for res, value in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_DATA, mem),
            (resource.RLIMIT_CPU, int(cpu_seconds) + 2),  # a backstop: the worker's clock rules
            (resource.RLIMIT_FSIZE, limits["output_bytes"] + 1),
            (resource.RLIMIT_NOFILE, limits["open_files"]),
            (resource.RLIMIT_NPROC, self.nproc),
            (resource.RLIMIT_CORE, 0),
        ):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass
        child.RUN_DIR = self.run_dir
        child.ORIGIN = os.getpid()
        child.install_builtins()
        audit.watch(self.allowed_reads + tuple(p for p in sys.path if p.startswith("/")))

    def _sweep(self, kid: Child) -> None:
        """Kill everything the sample left behind, reap it, and remove what it created."""
        if not kid.killed and not kid.poll_exit():
            # Its channel closed: give it a moment to exit on its own, so that a death by a
            # signal (SIGSEGV of a blown stack) is seen as such.
            wait_until = time.monotonic() + 1.0
            while time.monotonic() < wait_until and not kid.poll_exit():
                if kid.pidfd is not None:
                    select.select([kid.pidfd], [], [], wait_until - time.monotonic())
                else:
                    time.sleep(0.002)
        if not kid.poll_exit():
            kid.kill()
        if kid.status is None:
            try:
                _, kid.status, usage = os.wait4(kid.pid, 0)
                kid.cpu = usage.ru_utime + usage.ru_stime
            except ChildProcessError:
                kid.status = 0
        if self.pid1:
            # Everything in the namespace but this worker; killed again until none is left (a
            # fork bomb forks while it is being killed), and reaped: orphans are ours.
            until = time.monotonic() + 2.0
            while time.monotonic() < until:
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    while os.waitpid(-1, os.WNOHANG)[0] != 0:
                        pass
                except ChildProcessError:
                    break
                time.sleep(0.001)
        else:
            try:
                os.killpg(kid.pid, signal.SIGKILL)
            except OSError:
                pass
            # Orphans re-parent to us (child subreaper): kill until none is left.
            for _ in range(50):
                kids = self._children()
                if not kids:
                    break
                for pid in kids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self._reap(kid)
        self._reap(kid)
        for fd in (kid.fd, kid.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if kid.sock is not None:
            kid.sock.detach()
        if not self.seccomp:
            _remove_ipc()

    def _children(self) -> list[int]:
        me = os.getpid()
        kids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    stat = fh.read().decode(errors="replace")
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == me:
                kids.append(int(name))
        return kids

    @staticmethod
    def _reap(kid: Child) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.001)  # still-running children were sent SIGKILL
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return

    def _finish(self, kid: Child, limits: dict, **extra) -> dict:
        """The run record of a child that is done (or is killed now)."""
        duration = time.monotonic() - kid.start
        self._sweep(kid)
        status = kid.status
        out_cap = limits["output_bytes"]
        stdout, stdout_size = _read_capped(os.path.join(self.run_dir, ".stdout"), out_cap)
        stderr, stderr_size = _read_capped(os.path.join(self.run_dir, ".stderr"), 4000, True)
        cap = limits["results_bytes"]
        data = b"".join(kid.chunks)
        reply = {
            "exit": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
            "signal": None,
            "duration": duration,
            "cpu": kid.cpu,
            "results": data[:cap].decode("utf-8", errors="replace"),
            "results_bytes": kid.size,
            "exceeded": kid.size > cap,
            "stdout": stdout,
            "output_bytes": stdout_size + stderr_size,
            "stderr_tail": stderr,
            "timed_out": False,
            "timeout_at": None,
            "audit": sorted(kid.audits),
            # None where the kernel keeps no schedstat: then the clock was plain wall time.
            "wait": round(kid.waited(fresh=True), 4) if kid.schedstat else None,
            **extra,
        }
        if status is not None and os.WIFSIGNALED(status) and not kid.killed:
            reply["signal"] = os.WTERMSIG(status)
        _wipe(self.wipe_root)
        return reply

    # -- a sample's tests, timed from outside ----------------------------------------------
    def _watch(self, kid: Child, limits: dict, start: int, end: int) -> dict:
        """Read a run's reports; kill the child at its load, test or sample limit.

        The clock is wall time minus the time the child waited for a CPU because of load from
        outside the sample (:meth:`Child.credit`; at most ``MAX_CREDIT`` x the limit): on a
        loaded machine a test gets the time it would have had on an idle one, so load does not
        turn a correct answer into a timeout, while a loop, a sleep or a fork bomb is stopped at
        the limit as ever.
        """
        test_limits = limits["test_seconds"]
        budget = limits.get("deadline_seconds", float("inf"))
        cap = limits["results_bytes"]
        current, mark, tests_start = start, None, None
        mark_wait = tests_wait = 0.0
        clock: list[float] = []
        timeout_at = None

        def deadline_now(fresh: bool = False) -> float:
            waited, most = kid.credit(self.pid1, fresh), channel.MAX_CREDIT
            if mark is None:
                load = limits["load_seconds"]
                return kid.start + load + min(waited, most * load)
            limit = test_limits[current]
            return min(mark + limit + min(max(0.0, waited - mark_wait), most * limit),
                       tests_start + budget + min(max(0.0, waited - tests_wait),
                                                  most * budget)) + GRACE  # fmt: skip

        while True:
            now = time.monotonic()
            deadline = now + 5.0 if mark is not None and current >= end else deadline_now()
            lines = kid.wait(deadline - now, cap)
            arrived = time.monotonic()
            for line in lines:
                if mark is None:
                    if line.startswith(b'{"loaded"'):
                        mark = tests_start = arrived
                        mark_wait = tests_wait = kid.credit(self.pid1, fresh=True)
                    continue
                found = _INDEX.match(line)
                if found and int(found.group(1)) == current:
                    waited = max(mark_wait, kid.credit(self.pid1))
                    clock.append(arrived - mark - (waited - mark_wait))
                    mark, mark_wait = arrived, waited
                    current += 1
            if kid.size > cap:
                kid.kill()
                break
            if kid.eof or kid.status is not None:
                break
            # Past the deadline as last computed: the child may have waited for a CPU meanwhile,
            # which moves it; look again before calling it a timeout.
            if not lines and time.monotonic() >= deadline:
                if current < end and time.monotonic() < deadline_now(fresh=True):
                    continue
                timeout_at = "load" if mark is None else current
                kid.kill()
                break
        return self._finish(kid, limits, clock=clock, timed_out=timeout_at is not None,
                            timeout_at=timeout_at)  # fmt: skip

    def run(self, spec: dict, code: str, limits: dict) -> list[dict]:
        mode = spec["mode"]
        load = limits["load_seconds"]
        if mode == "stdio":
            runs = []
            stdins = spec.get("stdins") or []
            for i in range(int(limits.get("start", 0)), int(limits.get("end", len(stdins)))):
                limit = limits["test_seconds"][i]
                kid = self._fork(lambda: child.run_program(code), limits, load + limit,
                                 stdin_data=stdins[i])  # fmt: skip
                runs.append(self._watch_program(kid, limits, load + limit))
                if runs[-1]["timed_out"]:
                    break
            return runs
        start = int(limits.get("start", 0))
        end = int(limits.get("end", len(limits["test_seconds"])))
        tests = sum(limits["test_seconds"][start:end])
        cpu = load + min(limits.get("deadline_seconds", 1e9), tests)
        kid = self._fork(lambda: child.run_tests(code, spec, start, end), limits, cpu)
        return [self._watch(kid, limits, start, end)]

    def _watch_program(self, kid: Child, limits: dict, seconds: float) -> dict:
        """A whole program's run, on the same clock as :meth:`_watch`."""
        cap = limits["results_bytes"]
        timed_out = False
        while True:
            most = channel.MAX_CREDIT * seconds
            deadline = kid.start + seconds + GRACE + min(kid.credit(self.pid1), most)
            kid.wait(deadline - time.monotonic(), cap)
            if kid.size > cap:
                kid.kill()
                break
            if kid.eof or kid.status is not None:
                break
            credit = min(kid.credit(self.pid1, fresh=True), most)
            if time.monotonic() >= kid.start + seconds + GRACE + credit:
                timed_out = True
                kid.kill()
                break
        return self._finish(kid, limits, timed_out=timed_out, timeout_at=0 if timed_out else None)

    def abandon(self) -> None:
        """The parent is gone: end every process of this sandbox, then this worker."""
        if not self.pid1:  # as PID 1, the kernel kills everything left in the namespace
            for _ in range(50):
                kids = self._children()
                if not kids:
                    break
                for pid in kids:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    while os.waitpid(-1, os.WNOHANG)[0] != 0:
                        pass
                except ChildProcessError:
                    break
                time.sleep(0.002)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        os._exit(0)

    # -- requests --------------------------------------------------------------------------
    def handle(self, msg: dict, protocol) -> dict:
        op = msg.get("op")
        if op == "hello":
            return self.hello(msg)
        if op == "problem":
            spec = dict(msg)
            if spec.get("mode") == "call":
                spec["inputs"] = [codec.decode(x) for x in msg.get("inputs") or []]
            self.problems[msg["key"]] = spec
            while len(self.problems) > MAX_PROBLEMS:
                self.problems.popitem(last=False)
            return {"ok": True}
        if op == "call":
            return self.call(msg)
        if op == "end":
            return self.end_session()
        if op in ("run", "serve", "judge"):
            spec = self.problems.get(msg["key"])
            if spec is None:
                return {"unknown_key": msg["key"]}
            self.problems.move_to_end(msg["key"])
            if op == "run":
                return {"runs": self.run(spec, msg["code"], msg["limits"])}
            if op == "serve":
                return self.serve(spec, msg["code"], msg["limits"])
            return self.judge(spec, msg["limits"], protocol)
        return {"error": f"unknown op {op!r}"}

    def hello(self, msg: dict) -> dict:
        uid = msg.get("uid")
        for path in msg.get("path") or ():
            if path not in sys.path:
                sys.path.append(path)
        if os.getuid() == 0 and uid is not None:
            # Root only inside bwrap (no user namespace): become an unprivileged uid of this
            # sandbox's own, so that RLIMIT_NPROC (which does not bind uid 0) stops fork bombs.
            os.makedirs(self.run_dir, exist_ok=True)
            os.chown(self.run_dir, uid, uid)
            if os.path.isdir("/dev/shm"):
                try:
                    os.chmod("/dev/shm", 0o700)
                except OSError:
                    pass
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        _prctl(PR_SET_DUMPABLE, 0)
        self.seccomp = seccomp.install()
        return {"ok": True, "pid": os.getpid(), "uid": os.getuid(), "pid1": self.pid1,
                "seccomp": self.seccomp}  # fmt: skip


class ParentGone(Exception):
    """The parent closed the protocol (it died): nothing of this sandbox may outlive it."""


class Protocol:
    """Requests on the worker's stdin, replies on its stdout (private descriptors)."""

    def __init__(self) -> None:
        self.inp = os.fdopen(os.dup(0), "rb", buffering=0)
        self.fd = self.inp.fileno()
        self.out = os.fdopen(os.dup(1), "wb", buffering=0)
        self.pieces: list[bytes] = []
        self.lines: list[bytes] = []

    def fill(self) -> None:
        """Read what is there (a request may be megabytes: pieces, joined once per line)."""
        chunk = self.inp.read(1 << 20)
        if not chunk:
            raise ParentGone()
        start = 0
        while (at := chunk.find(b"\n", start)) >= 0:
            self.lines.append(b"".join(self.pieces) + chunk[start:at])
            self.pieces = []
            start = at + 1
        if start < len(chunk):
            self.pieces.append(chunk[start:])

    def read(self) -> dict | None:
        while True:
            while not self.lines:
                try:
                    self.fill()
                except ParentGone:
                    return None
            line = self.lines.pop(0)
            if line.strip():
                return json.loads(line)

    def send(self, reply: dict) -> None:
        self.out.write((json.dumps(reply) + "\n").encode())


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    run_dir = args.get("run_dir", "/tmp/run")
    protocol = channel.PARENT = Protocol()
    # Nothing printed by accident may corrupt the protocol.
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    pid1 = os.getpid() == 1
    if not pid1:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    for sig in (signal.SIGINT, signal.SIGTERM):
        # As PID 1 a default disposition means: signals from inside the namespace are dropped.
        signal.signal(sig, signal.SIG_DFL)
    wipe_root = os.path.dirname(run_dir) if pid1 else run_dir
    worker = Worker(pid1=pid1, nproc=int(args.get("nproc", 64)), run_dir=run_dir,
                    wipe_root=wipe_root)  # fmt: skip
    while True:
        try:
            msg = protocol.read()
        except (json.JSONDecodeError, ValueError) as exc:
            protocol.send({"error": f"bad request: {exc}"})
            continue
        if msg is None:
            worker.end_session()
            if "run_dir" in args:
                shutil.rmtree(run_dir, ignore_errors=True)
            return
        try:
            reply = worker.handle(msg, protocol)
        except ParentGone:
            worker.abandon()
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        protocol.send(reply)


if __name__ == "__main__":
    main()
