"""Report figures: the tables they are drawn from, the files written, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from codedpo.io import InputError
from codedpo.reporting.implicit_reward import reward_pairs
from codedpo.reporting.plots import (
    Run,
    main,
    parse_histogram,
    pass_at_1_frame,
    pass_histogram_table,
    plot_pass_at_1,
    plot_reward_differences,
    variant_label,
    verdict_table,
)

PNG = b"\x89PNG\r\n\x1a\n"


def score(policy: str, variant: str, value: float, pairs_from: str | None = None) -> dict:
    out = {"policy": policy, "variant": variant, "benchmark": "demo_eval", "pass_at_1": value}
    if pairs_from:
        out["pairs_from"] = pairs_from
    return out


SCORES = [
    score("a", "dpo-b", 0.7),
    score("a", "base", 0.3),
    score("a", "dpo-a", 0.8, pairs_from="a"),
    score("a", "rft", 0.6),
    score("b", "base", 0.4),
]

STATS = {
    "demo-a": {
        "pass_histogram": {"1/8": 2, "4/8": 5, "8/8": 1},
        "status_counts": {"passed": 30, "failed": 20, "runtime_error": 2, "syntax_error": 0},
    },
    "demo-b": {
        "pass_histogram": {"0/8": 3, "4/8": 1},
        "status_counts": {"passed": 10, "failed": 40, "timeout": 1, "sandbox_error": 0},
    },
}


@pytest.mark.parametrize(
    ("policy", "variant", "pairs_from", "label"),
    [
        ("a", "base", None, "base"),
        ("a", "rft", None, "+ RFT"),
        ("a", "dpo", None, "+ DPO"),
        ("a", "dpo-a", None, "+ DPO"),
        ("a", "dpo-b", None, "+ DPO (pairs from b)"),
        ("a", "dpo", "b", "+ DPO (pairs from b)"),
    ],
)
def test_variant_label(policy, variant, pairs_from, label) -> None:
    assert variant_label(policy, variant, pairs_from) == label


@pytest.mark.parametrize(
    ("variant", "pairs_from", "run", "label"),
    [
        ("dpo", "a", Run("paper", "dpo", 2), "+ DPO r2"),
        ("dpo", "a", Run("max_min", "dpo", 3), "+ DPO max_min r3"),
        ("dpo", "a", Run("paper", "dpo-ipo", 1), "+ DPO ipo"),
        ("dpo", "b", Run("by_error", "dpo", 2), "+ DPO by_error r2 (pairs from b)"),
        ("rft", None, Run("paper", "dpo", 2), "+ RFT r2"),
        ("base", None, Run("max_min", "dpo", 2), "base"),
    ],
)
def test_variant_label_names_the_run(variant, pairs_from, run, label) -> None:
    assert variant_label("a", variant, pairs_from, run) == label


def test_pass_at_1_frame_orders_runs_after_the_papers() -> None:
    runs = [
        {**score("a", "dpo", 0.9, "a"), "arm": "max_min", "round": 2},
        {**score("a", "dpo", 0.85, "a"), "round": 2},
        {**score("a", "dpo", 0.82, "a"), "arm": "max_min"},
    ]
    df = pass_at_1_frame(SCORES + runs)
    ordered = df[df["policy"] == "a"].sort_values("order", kind="stable")["label"].tolist()
    assert ordered == ["base", "+ RFT", "+ DPO", "+ DPO r2", "+ DPO max_min",
                       "+ DPO max_min r2", "+ DPO (pairs from b)"]  # fmt: skip


def test_pass_at_1_frame_orders_variants_like_the_paper() -> None:
    df = pass_at_1_frame(SCORES)
    ordered = df[df["policy"] == "a"].sort_values("order", kind="stable")["label"].tolist()
    assert ordered == ["base", "+ RFT", "+ DPO", "+ DPO (pairs from b)"]
    with pytest.raises(InputError, match="'ppo' is not base"):
        pass_at_1_frame([score("a", "ppo", 0.1)])
    with pytest.raises(InputError, match="missing field 'pass_at_1'"):
        pass_at_1_frame([{"policy": "a", "variant": "base", "benchmark": "x"}])


def test_pass_histogram_table_same_n_fills_every_k() -> None:
    table = pass_histogram_table(STATS)
    assert list(table.index) == [f"{k}/8" for k in range(9)]
    assert table["demo-a"].tolist() == [0, 2, 0, 0, 5, 0, 0, 0, 1]
    assert table["demo-b"].tolist() == [3, 0, 0, 0, 1, 0, 0, 0, 0]


def test_pass_histogram_table_mixed_n_bins_rates() -> None:
    table = pass_histogram_table({"x": {"pass_histogram": {"1/4": 2, "2/8": 1, "7/7": 3}}})
    assert len(table) == 10 and table.loc["0.2-0.3", "x"] == 3 and table.loc["0.9-1.0", "x"] == 3
    assert table["x"].sum() == 6
    with pytest.raises(InputError, match="'half' is not 'k/n'"):
        parse_histogram({"half": 1})


def test_verdict_table_orders_statuses_and_drops_empty_ones() -> None:
    table = verdict_table(STATS)
    assert list(table.index) == ["passed", "failed", "runtime_error", "timeout"]
    assert table.loc["timeout"].tolist() == [0, 1] and table["demo-a"].sum() == 52


def test_figures_are_written_and_reproducible(tmp_path: Path) -> None:
    first = plot_pass_at_1(SCORES, tmp_path / "p.png", models=["a", "b"])
    again = plot_pass_at_1(SCORES, tmp_path / "q.png", models=["a", "b"])
    assert first.read_bytes()[:8] == PNG
    assert first.read_bytes() == again.read_bytes()  # no timestamps in the file
    assert plot_pass_at_1(SCORES, tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in plot_pass_at_1(SCORES, tmp_path / "p.svg").read_bytes()[:1000]


def test_reward_difference_figure(tmp_path: Path) -> None:
    responses = pd.DataFrame(
        {
            "task_id": ["t"] * 3,
            "sample_id": ["t/0", "t/1", "t/2"],
            "raw": ["a", "b", "c"],
            "status": ["passed", "failed", "runtime_error"],
            "frac_passed": [1.0, 0.5, 0.0],
            "rule_reward": [1.0, -0.3, -0.6],
            "implicit_reward": [0.1, -0.2, -0.1],
        }
    )
    out = plot_reward_differences(responses, reward_pairs(responses), tmp_path / "f.png", "x")
    assert out.read_bytes()[:8] == PNG
    # No pairs at all (every response passed) still draws.
    empty = responses.assign(status="passed", frac_passed=1.0, rule_reward=1.0)
    assert plot_reward_differences(empty, reward_pairs(empty), tmp_path / "g.png").exists()


def test_cli(tmp_path: Path) -> None:
    paths = []
    for i, s in enumerate(SCORES):
        path = tmp_path / f"s{i}.json"
        path.write_text(json.dumps(s))
        paths.append(str(path))
    stats = []
    for policy, s in STATS.items():
        path = tmp_path / "pairs" / policy / "stats.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(s))
        stats.append(str(path))
    assert main(["pass-at-1", "--scores", *paths, "--out", str(tmp_path / "a.png")]) == 0
    assert main(["pass-histogram", "--stats", *stats, "--out", str(tmp_path / "h.png")]) == 0
    assert main(["verdicts", "--stats", *stats, "--out", str(tmp_path / "v.png")]) == 0
    for name in ("a.png", "h.png", "v.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    with pytest.raises(InputError, match="1 --policies for 2 --stats"):
        main(["verdicts", "--stats", *stats, "--policies", "x", "--out", str(tmp_path / "w.png")])
