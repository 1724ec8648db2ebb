"""Isolation backends: the command line that starts one warm worker (``harness.py``).

- ``bwrap``: Debian's bubblewrap. Only the Python installation, the system libraries and the
  harness are bound, read-only; every namespace is unshared (no network); the environment is
  cleared; ``/tmp`` is a private size-capped tmpfs; the worker is PID 1 of its PID namespace and
  dies with its parent. Started as root, bwrap keeps the initial user namespace and the worker
  drops to an unprivileged uid of its own before it touches untrusted code (``RLIMIT_NPROC`` does
  not bind uid 0, so a fork bomb would otherwise run free); started by a normal user, bwrap
  unshares the user namespace too.
- ``apptainer``: for HPC clusters: ``apptainer exec --containall --cleanenv --no-home`` on a
  read-only image built from ``envs/sandbox.def``, networking off, a writable private tmp.
- ``process``: resource limits only, for development. It does not isolate anything.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# The sandbox side: every file in this folder is standard library only and imports nothing of ours.
HARNESS_DIR = Path(__file__).resolve().parent / "sandbox"
BACKENDS = ("bwrap", "apptainer", "process")
# Sandbox uids for the root case: base + the host pid of the sandbox's own bwrap process, so
# that RLIMIT_NPROC counts each sandbox's processes apart from every other sandbox on the
# machine, including other runs' (two SLURM shards on one node): a live pid is unique, and when
# a sandbox ends every process in its PID namespace dies with it, so a reused pid finds its uid
# free. Far above the uids systems hand out (and above subordinate-uid ranges).
UID_BASE = 2_000_000_000
# The files of the harness that the sandbox sees (stdlib only).
HARNESS_FILES = ("harness.py", "channel.py", "sessions.py", "child.py", "judge.py", "audit.py",
                 "codec.py", "seccomp.py")
RUNTIME_MOUNT = "/runtime"
# The sandbox's whole environment. A fixed hash seed makes verdicts reproducible: an answer whose
# output order follows set iteration (LeetCode's word-ladder-ii) must not pass on one run and
# fail on the next. One BLAS thread: numpy would otherwise start one per core at import, each
# counted by RLIMIT_NPROC and reserving stack under RLIMIT_AS.
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/tmp",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# The interpreter's flags: no user site, no site (its import hooks are not the judge's), no
# script directory on sys.path (-P); not -I, which would ignore PYTHONHASHSEED. The environment
# is cleared by every backend, so only SANDBOX_ENV reaches it.
PYTHON_FLAGS = ["-s", "-S"] + (["-P"] if sys.version_info >= (3, 11) else [])


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxConfig:
    backend: str = "bwrap"
    python: str | None = None  # interpreter used inside the sandbox (default: this base Python)
    # Holds a sample's stdin, stdout and stderr files (each capped by RLIMIT_FSIZE); wiped after
    # every sample. Pages cost memory only when used.
    tmpfs_bytes: int = 128 * 2**20
    max_processes: int = 64
    uid_base: int = UID_BASE  # root only: a sandbox runs as uid_base + its bwrap's host pid
    # The main thread's stack (RLIMIT_STACK): Codeforces and LeetCode answers recurse 10^5 deep
    # through C frames (functools.lru_cache); an 8 MiB default stack dies there with SIGSEGV.
    stack_mb: int = 256
    # The judge runtime: a directory of pinned packages (sortedcontainers, ...) the untrusted
    # code may import, bound read-only (built by `codedpo runtime`; None: the stdlib only).
    runtime: str | None = None
    apptainer_image: str | None = None
    apptainer_python: str = "/usr/local/bin/python3"
    apptainer_site: str = "/usr/local/lib/python3.11/site-packages"
    apptainer_binary: str = "apptainer"


def default_backend() -> str:
    """``bwrap`` where it is installed, else ``process``."""
    return "bwrap" if shutil.which("bwrap") else "process"


def sandbox_python(config: SandboxConfig) -> str:
    """The interpreter for untrusted code: the base installation, never the project's venv."""
    if config.python:
        return config.python
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (base / "bin" / version, base / "bin" / "python3"):
        if candidate.exists():
            return str(candidate.resolve())
    return os.path.realpath(sys.executable)


def sandbox_uid(config: SandboxConfig, host_pid: int) -> int:
    return config.uid_base + host_pid


def runtime_paths(config: SandboxConfig) -> list[str]:
    """Where the runtime's packages are, as the sandboxed interpreter sees them."""
    if config.backend == "apptainer":
        return [config.apptainer_site]  # the image installs them (envs/sandbox.def); -S hides it
    if not config.runtime:
        return []
    if config.backend == "bwrap":
        return [RUNTIME_MOUNT]
    return [str(Path(config.runtime).resolve())]


def _count_own_processes() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def nproc_limit(config: SandboxConfig) -> int:
    """RLIMIT_NPROC for a sample: the processes its uid already has plus the allowance."""
    if os.getuid() == 0:
        # The worker runs as its own slot uid, which owns only the worker itself.
        return config.max_processes + 1
    # A normal user's count includes their other processes (RLIMIT_NPROC is per real uid).
    return _count_own_processes() + config.max_processes


def worker_command(config: SandboxConfig, slot: int, run_dir: str | None = None) -> list[str]:
    """The argv that starts one worker for ``slot`` under ``config.backend``.

    ``run_dir`` (process backend only) is the worker's private scratch directory: workers share
    the host's ``/tmp`` there, unlike in a sandbox.
    """
    harness = str(HARNESS_DIR / "harness.py")
    args = [f"nproc={nproc_limit(config)}"]
    if config.backend == "process":
        if run_dir is None:
            raise ValueError("the process backend needs a private run_dir")
        return [sandbox_python(config), *PYTHON_FLAGS, harness, *args, f"run_dir={run_dir}"]
    if config.backend == "bwrap":
        return _bwrap_command(config, slot, args)
    if config.backend == "apptainer":
        return apptainer_command(config, args)
    raise ValueError(f"unknown sandbox backend {config.backend!r}; choose one of {BACKENDS}")


def _bwrap_command(config: SandboxConfig, slot: int, args: list[str]) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`, "
            "or set execution.backend to 'apptainer' or 'process'"
        )
    python = sandbox_python(config)
    prefix = Path(sysconfig.get_config_var("prefix") or sys.base_prefix).resolve()
    if not Path(python).is_relative_to(prefix):
        prefix = Path(python).resolve().parent.parent
    cmd = [bwrap]
    # Parents of the bound prefix are created mode 0755 so that the slot uid can traverse them.
    for parent in reversed(prefix.parents):
        if str(parent) != "/":
            cmd += ["--perms", "0755", "--dir", str(parent)]
    cmd += ["--ro-bind", str(prefix), str(prefix)]
    for lib in ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"):
        if os.path.isdir(lib) and not Path(lib).resolve().is_relative_to(prefix):
            cmd += ["--ro-bind", lib, lib]
    for name in HARNESS_FILES:
        cmd += ["--ro-bind", str(HARNESS_DIR / name), f"/harness/{name}"]
    if config.runtime:
        cmd += ["--ro-bind", str(Path(config.runtime).resolve()), RUNTIME_MOUNT]
    cmd += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(config.tmpfs_bytes), "--tmpfs", "/tmp",
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session", "--as-pid-1",
        "--clearenv",
        *(arg for name, value in SANDBOX_ENV.items() for arg in ("--setenv", name, value)),
        "--chdir", "/tmp",
    ]  # fmt: skip
    if os.getuid() != 0:
        cmd += ["--unshare-user", "--cap-drop", "ALL"]
    # As root the worker gets its own uid in its first message (the host pid is known then).
    return [*cmd, python, *PYTHON_FLAGS, "/harness/harness.py", *args]


def apptainer_command(config: SandboxConfig, args: list[str]) -> list[str]:
    """``apptainer exec`` on the sandbox image (built from ``envs/sandbox.def``)."""
    if not config.apptainer_image:
        raise SandboxUnavailable(
            "execution.apptainer_image is not set: build it with "
            "`apptainer build sandbox.sif envs/sandbox.def` and point the config at it"
        )
    return [
        config.apptainer_binary, "exec",
        "--containall", "--cleanenv", "--no-home", "--no-mount", "home,cwd",
        "--net", "--network", "none",
        "--writable-tmpfs",
        "--bind", f"{HARNESS_DIR}:/harness:ro",  # the sandbox side's folder, nothing else of ours
        "--pwd", "/tmp",
        *(arg for name, value in SANDBOX_ENV.items() for arg in ("--env", f"{name}={value}")),
        config.apptainer_image,
        config.apptainer_python, *PYTHON_FLAGS, "/harness/harness.py", *args,
    ]  # fmt: skip


def check_backend(config: SandboxConfig) -> None:
    """Raise :class:`SandboxUnavailable` with a fix when the backend cannot start here."""
    if config.backend == "bwrap" and shutil.which("bwrap") is None:
        worker_command(config, 0)
    if config.backend == "apptainer":
        if shutil.which(config.apptainer_binary) is None:
            raise SandboxUnavailable(
                f"{config.apptainer_binary!r} not found on PATH: load your cluster's apptainer "
                "module, or choose execution.backend 'bwrap'"
            )
        worker_command(config, 0)
