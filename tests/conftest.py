"""Shared fixtures: one real run of the demo workflow serves every test that reads its outputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from workflow_helpers import copy_workflow, snakemake  # noqa: E402


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The default config (the embedded demo) run with `snakemake --cores 2`."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    start = time.monotonic()
    snakemake(workdir)
    print(f"demo wall time: {time.monotonic() - start:.0f} s")
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
            codedpo = [sys.executable, "-m", "codedpo.cli"]
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
