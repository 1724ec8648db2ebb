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

HARNESS_DIR = Path(__file__).resolve().parent
BACKENDS = ("bwrap", "apptainer", "process")
# Slot uids for the root case: one per worker, so that RLIMIT_NPROC counts each worker's
# processes apart from the others'. Far above the uids a Debian system hands out.
SLOT_UID_BASE = 61000


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxConfig:
    backend: str = "bwrap"
    python: str | None = None  # interpreter used inside the sandbox (default: this base Python)
    tmpfs_bytes: int = 512 * 2**20  # holds the results file; pages cost memory only when used
    max_processes: int = 64
    uid_base: int = SLOT_UID_BASE  # root only: worker i runs as uid_base + i
    apptainer_image: str | None = None
    apptainer_python: str = "/usr/local/bin/python3"
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
        return [sandbox_python(config), "-I", "-S", harness, *args, f"run_dir={run_dir}"]
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
    cmd += [
        "--ro-bind", str(HARNESS_DIR / "harness.py"), "/harness/harness.py",
        "--ro-bind", str(HARNESS_DIR / "codec.py"), "/harness/codec.py",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(config.tmpfs_bytes), "--tmpfs", "/tmp",
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session", "--as-pid-1",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--chdir", "/tmp",
    ]  # fmt: skip
    if os.getuid() == 0:
        uid = config.uid_base + slot
        args = [*args, f"uid={uid}", f"gid={uid}"]
    else:
        cmd += ["--unshare-user", "--cap-drop", "ALL"]
    return [*cmd, python, "-I", "-S", "/harness/harness.py", *args]


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
        "--bind", f"{HARNESS_DIR}:/harness:ro",
        "--pwd", "/tmp",
        config.apptainer_image,
        config.apptainer_python, "-I", "-S", "/harness/harness.py", *args,
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
