"""The house style, checked in CI (`make test` runs it; `make lint` runs the same commands):
snakefmt and `snakemake --lint` on the workflow, ruff on the Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import REPO, snakemake_env

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "snakefmt"), "--check", "."],
        [sys.executable, "-m", "snakemake", "--lint"],
        [str(BIN / "ruff"), "check", "src", "tests", "scripts", "bench"],
    ],
    ids=["snakefmt", "snakemake-lint", "ruff"],
)
def test_clean(command):
    proc = subprocess.run(
        command, cwd=REPO, env=snakemake_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "--lint" in command:
        # snakemake --lint exits 0 even with findings; it prints this only when there are none
        assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr
