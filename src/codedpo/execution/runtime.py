"""``codedpo runtime``: build the judge runtime, the packages untrusted code may import.

    codedpo runtime --requirements envs/judge-runtime.txt --out resources/runtime/judge

LeetCode's judge gives its users ``sortedcontainers`` (and answers trained on LeetCode use
``SortedList`` freely), so a sandbox without it fails correct code. The runtime is a directory
of its own with exactly the pinned packages of the requirements file, installed for the
interpreter the sandbox runs (the base Python, never the project's virtual environment, which
untrusted code must not see); the bwrap backend binds it read-only at ``/runtime``. Its
``runtime.json`` names what is inside, and every execution record names the runtime it ran in.

The directory is built in a temporary place and renamed at the end: a failed build leaves no
half-built runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from codedpo.io import InputError
from codedpo.verbs import command_parser

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
# Where `make setup` and the workflow's rule build_runtime build it (relative to the working
# directory, as every path of the workflow is).
DEFAULT_DIR = Path("resources/runtime/judge")
# `--runtime stdlib`: the standard library only, on purpose.
STDLIB = "stdlib"


def resolve(runtime: str | Path | None, *, warn: bool = True) -> str | None:
    """The judge runtime to run in: the one named, else the one `make setup` builds.

    ``runtime`` is a directory, ``"stdlib"`` (the standard library only, chosen), or None: then
    ``resources/runtime/judge`` when it is built, as the workflow judges, and otherwise the
    standard library, with one line on stderr saying so (``warn``). A named directory that is not
    a built runtime is an error naming it.
    """
    if runtime is not None and str(runtime) == STDLIB:
        return None
    if runtime is not None:
        describe(Path(runtime))  # an error naming the directory if it is not a runtime
        return str(runtime)
    if (DEFAULT_DIR / "runtime.json").exists():
        return str(DEFAULT_DIR)
    if warn:
        print(f"codedpo: no judge runtime at {DEFAULT_DIR} (build it with `make setup` or "
              f"`codedpo runtime --out {DEFAULT_DIR}`): judging with the standard library only, "
              "so answers that import sortedcontainers or numpy fail", file=sys.stderr)  # fmt: skip
    return None


def read_requirements(path: Path) -> list[str]:
    """Exact pins (``name==version``), one per line; anything else is an error naming the line."""
    if not path.exists():
        raise InputError(f"{path}: requirements file not found")
    pins = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PIN.match(line):
            raise InputError(f"{path}:{n}: {line!r} is not an exact pin (name==version)")
        pins.append(line)
    return pins


def runtime_id(pins: list[str]) -> str:
    """A short name of the runtime: the Python version and a hash of the pins."""
    digest = hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:10]
    return f"py{sys.version_info.major}.{sys.version_info.minor}-{digest}"


def describe(path: Path) -> dict:
    """The ``runtime.json`` of a built runtime (an error naming the file if it is not one)."""
    meta = path / "runtime.json"
    if not meta.exists():
        raise InputError(f"{path}: not a judge runtime (no runtime.json): build it with "
                         f"`codedpo runtime --out {path}`")  # fmt: skip
    return json.loads(meta.read_text())


def build(requirements: Path, out: Path, *, progress: bool = True) -> dict:
    pins = read_requirements(requirements)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if pins:
            cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                   "--disable-pip-version-check", "--target", str(tmp), *pins]  # fmt: skip
            if not progress:
                cmd.insert(4, "--quiet")
            proc = subprocess.run(cmd, capture_output=not progress, text=True)
            if proc.returncode != 0:
                raise InputError(f"{requirements}: pip could not install {pins}:\n"
                                 f"{(proc.stderr or '')[-2000:]}")  # fmt: skip
        meta = {"id": runtime_id(pins), "requirements": str(requirements), "packages": pins,
                "python": sys.version.split()[0]}  # fmt: skip
        (tmp / "runtime.json").write_text(json.dumps(meta, indent=2) + "\n")
        for entry in tmp.iterdir():  # readable by the sandbox's unprivileged uid
            for root, dirs, files in os.walk(entry):
                for name in dirs + files:
                    os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = command_parser("runtime", __doc__.split("\n")[0])
    p.add_argument("--requirements", type=Path, default=Path("envs/judge-runtime.txt"),
                   help="exact pins, one per line (default: %(default)s)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the runtime directory to build")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    meta = build(args.requirements, args.out, progress=not args.no_progress)
    print(json.dumps(meta))
    return 0
