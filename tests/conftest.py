"""Shared fixtures: one real run of the demo workflow serves every test that reads its outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from workflow_helpers import copy_workflow, snakemake  # noqa: E402

# CODEDPO_TEST_DEMO=DIR: a finished demo to start from instead of running it whole (the inner loop:
# a test that reads the demo, run alone, without minutes of demo first; DIR may be the checkout
# after `make demo`). Its outputs and Snakemake's records are copied beside today's workflow files
# and brought up to date by the same `snakemake --cores 2`, which reruns what a changed rule,
# param or input makes stale, not what a change to the package's code alone would change.
# CI never sets it.
DEMO_FROM = os.environ.get("CODEDPO_TEST_DEMO")


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The default config (the embedded demo) run with `snakemake --cores 2`: one run, shared by
    every test that reads it (each test that changes it works in a copy)."""
    workdir = tmp_path_factory.mktemp("demo")
    for name in ("results", "resources", "logs", "benchmarks", ".snakemake") if DEMO_FROM else ():
        if (Path(DEMO_FROM) / name).is_dir():  # a run's outputs and records (e.g. `make demo`'s)
            shutil.copytree(Path(DEMO_FROM) / name, workdir / name, symlinks=True)
    copy_workflow(workdir)
    start = time.monotonic()
    snakemake(workdir)
    print(f"demo wall time: {time.monotonic() - start:.0f} s (from {DEMO_FROM or 'scratch'})")
    return workdir


@pytest.fixture(scope="session")
def judge_runtime(tmp_path_factory) -> Path:
    """The judge runtime (envs/judge-runtime.txt) built by `codedpo runtime`, once per session."""
    from codedpo.execution.runtime import build

    out = tmp_path_factory.mktemp("runtime") / "judge"
    build(Path(__file__).resolve().parents[1] / "envs/judge-runtime.txt", out, progress=False)
    return out


SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
PLUS_FILES = {"humaneval_plus": "HumanEvalPlus.jsonl.gz", "mbpp_plus": "MbppPlus-v0.2.0.jsonl.gz"}


@pytest.fixture(scope="session")
def plus_expected(tmp_path_factory):
    """HumanEval+'s and MBPP+'s expected outputs, computed once per session by the rules' own
    command (`codedpo execute --expected-only`, bwrap, 2 workers): the real-benchmark tests share
    them instead of computing them twice (about 3 minutes). ``get(fmt, dest)`` copies the cache
    to ``dest``; a test whose problems differ finds the key changed and recomputes."""
    root = tmp_path_factory.mktemp("plus-expected")
    made: dict[str, Path] = {}

    def get(fmt: str, dest: Path) -> Path:
        if fmt not in made:
            problems, expected = root / f"{fmt}.jsonl", root / f"{fmt}.expected.json"
            codedpo = [sys.executable, "-m", "codedpo"]
            subprocess.run([*codedpo, "prepare", "--source",
                            str(SHARED_BENCHMARKS / PLUS_FILES[fmt]), "--format", fmt,
                            "--out", str(problems)], check=True, capture_output=True)  # fmt: skip
            start = time.monotonic()
            subprocess.run([*codedpo, "execute", "--problems", str(problems), "--expected",
                            str(expected), "--expected-only", "--backend", "bwrap", "--workers",
                            "2", "--no-progress"], check=True, capture_output=True)  # fmt: skip
            print(f"{fmt} expected outputs: {time.monotonic() - start:.0f} s")
            made[fmt] = expected
        shutil.copy(made[fmt], dest)
        return dest

    return get
