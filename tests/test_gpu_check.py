"""The prepared GPU check (`bench/gpu_check.sh`) runs: its --smoke mode is the same code on the
CPU with tiny shapes, so a GPU session can run the real check without debugging it first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_data

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_runs_every_measurement(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(REPO / "bench/gpu_check.sh"), "--smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    shared = REPO.parent / "shared"
    if shared.exists():
        assert result["machine"]["shape"].startswith("checked against")
    engines = [(r["engine"], r["sequences"], r["tokens"]) for r in result["sampling"]]
    assert engines == [("hf backend", 16, 128), ("baseline", 16, 128)]  # 2 prompts x 8, 8 tokens
    assert [r["precompute_ref_log_probs"] for r in result["dpo"]] == [True, False]
    assert all(r["tokens_per_s"] > 0 for r in result["sampling"] + result["dpo"])
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| smoke | hf backend | 16 | 128 |" in table
    assert "| smoke | resident ref | fp32 |" in table
