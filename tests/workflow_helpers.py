"""Running the real workflow in a copy of its files (the repository's results/ stays untouched)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from snakemake.utils import update_config

REPO = Path(__file__).resolve().parents[1]
# profiles/default: the workflow profile Snakemake reads on every run (show-failed-logs, checksums)
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "schemas", "configs", "envs", "report",
                  "src/codedpo/data", "profiles/default"]  # fmt: skip


def copy_workflow(dest: Path, extra: tuple[str, ...] = ()) -> Path:
    """Copy the workflow's files (and ``extra`` ones, e.g. ``profiles``) into ``dest``."""
    for name in (*WORKFLOW_FILES, *extra):
        src = REPO / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy(src, target)
    return dest


def snakemake_env() -> dict[str, str]:
    """The test's own interpreter first on PATH: the rules call `codedpo` and `accelerate`."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 900):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run (`snakemake -n`); {} when there is nothing to do."""
    proc = snakemake(workdir, "-n", *args)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in stats.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def merge(base: dict, override: dict) -> dict:
    """``override`` merged over a copy of ``base`` as ``--configfile`` merges a file over
    config.yaml (Snakemake's own ``update_config``: nested mappings update, the rest replaces)."""
    out = copy.deepcopy(base)
    update_config(out, copy.deepcopy(override))
    return out
