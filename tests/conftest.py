"""Shared fixtures: one real run of the demo workflow serves every test that reads its outputs."""

from __future__ import annotations

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
    from codedpo.runtime import build

    out = tmp_path_factory.mktemp("runtime") / "judge"
    build(Path(__file__).resolve().parents[1] / "envs/judge-runtime.txt", out, progress=False)
    return out
