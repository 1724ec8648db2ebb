"""`snakemake --report` on the demo: the tables, figures and implicit-reward analysis are in it.

Uses the session's real demo run (tests/conftest.py), then builds the self-contained HTML report
and the zip report from it.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from workflow_helpers import snakemake

POLICIES = ["demo-codeqwen", "demo-deepseek-coder", "demo-codellama"]  # config.yaml
pytestmark = pytest.mark.workflow

# Every file the rules mark with report(), with its category.
REPORTED = {
    "results/tables/table1.csv": "Tables",
    "results/tables/table2.csv": "Tables",
    "results/tables/table1.tex": "Tables",
    "results/tables/table2.tex": "Tables",
    "results/plots/pass_at_1.png": "Figures",
    "results/plots/pass_histogram.png": "Figures",
    "results/plots/verdicts.png": "Figures",
    "results/plots/training_curves.png": "Figures",
}
for _policy in POLICIES:
    for _name in ("implicit_rewards.csv", "reward_pairs.csv", "reward_summary.json",
                  "reward_differences.png"):  # fmt: skip
        REPORTED[f"results/analysis/{_policy}/{_name}"] = "Implicit reward"


def test_demo_writes_the_analysis_plots_and_latex(demo: Path) -> None:
    for path in REPORTED:
        assert (demo / path).stat().st_size > 0, path
    for policy in POLICIES:
        summary = json.loads((demo / f"results/analysis/{policy}/reward_summary.json").read_text())
        assert summary["responses"] > 0 and summary["pairs"] > 0
        assert summary["beta"] == 0.1  # the checkpoint's training beta (config.yaml's dpo)
        assert summary["policy_model"] == f"results/checkpoints/{policy}/dpo-{policy}"
        assert summary["ref_model"] == f"results/models/{policy}"
        assert -1.0 <= summary["spearman_implicit_vs_frac_passed"] <= 1.0
        assert 0.0 <= summary["more_severe_ranked_lower"]["ranked_lower"] <= 1.0
    tex = (demo / "results/tables/table1.tex").read_text()
    assert r"\textbf{" in tex and r"demo\_eval" in tex


def test_html_report_contains_tables_figures_and_captions(demo: Path) -> None:
    snakemake(demo, "--report", "report.html")
    html = (demo / "report.html").read_text(encoding="utf-8")
    for path, category in REPORTED.items():
        assert Path(path).name in html, path
        assert category in html, category
    # Captions (report/*.rst), rendered with the job's wildcards.
    assert "Aligning CodeLLMs with Direct Preference Optimization" in html  # report/workflow.rst
    assert "<strong>Table 1</strong>" in html and "<strong>Table 2</strong>" in html
    for policy in POLICIES:
        assert f"The paper's Figure 1, measured for policy <strong>{policy}</strong>" in html
    assert "Per-problem pass rate of the on-policy samples" in html
    assert "Verdicts of the on-policy samples per policy" in html
    # the training curves, and where each run's TensorBoard logs are
    assert "Every trained checkpoint (RFT, DPO, GRPO) per optimizer step" in html
    text = re.sub(r"<[^>]+>", "", html)  # the caption's literals are split into spans
    assert "tensorboard --logdir logs/tracking" in text


def test_zip_report_holds_every_reported_file(demo: Path) -> None:
    snakemake(demo, "--report", "report.zip")
    with zipfile.ZipFile(demo / "report.zip") as archive:
        # Files sit under report/data/raw/<hash>/<file name>: one of each name per policy.
        names = Counter(Path(name).name for name in archive.namelist() if "/data/raw/" in name)
    assert names == Counter(Path(path).name for path in REPORTED)
