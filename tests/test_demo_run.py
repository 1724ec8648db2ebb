"""What the demo run (tests/conftest.py's shared `demo` fixture) shows: three policies shaped
like the paper's models, sampled through codedpo.sampling.sample, their tables with intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from codedpo.models import chat

pytestmark = pytest.mark.workflow
POLICIES = {"demo-codeqwen": "codeqwen", "demo-deepseek-coder": "deepseek-coder",
            "demo-codellama": "codellama"}  # fmt: skip
MARKUP = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<fim_pad>", "<|EOT|>",
          "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "</s>", "<s>", "### Instruction",
          "### Response", "[INST]", "[/INST]")  # fmt: skip


def _samples(demo: Path, policy: str) -> list[dict]:
    return [json.loads(line) for f in sorted((demo / f"results/samples/{policy}").glob("*"))
            for line in f.open()]  # fmt: skip


def test_sampling_stops_at_each_policys_end_of_turn(demo: Path):
    """Today's codedpo.sampling.sample with the demo policies: no response holds template markup
    or a special token, and almost every one ended on the end-of-turn token before the budget."""
    config = yaml.safe_load((demo / "config.yaml").read_text())
    budget = config["sampling"]["max_new_tokens"]
    for policy, family in POLICIES.items():
        info = json.loads((demo / f"results/models/{policy}/demo_model.json").read_text())
        assert info["args"]["family"] == family
        tokenizer = chat.load_tokenizer(str(demo / f"results/models/{policy}"))
        samples = _samples(demo, policy)
        assert not [s["raw"] for s in samples if any(m in s["raw"] for m in MARKUP)], policy
        assert not [s["solution"] for s in samples if any(m in s["solution"] for m in MARKUP)]
        lengths = [
            len(chat.completion_ids(tokenizer, [{"role": "user", "content": s["prompt"]}],
                                    s["raw"]))
            for s in samples
        ]  # fmt: skip
        stopped = sum(n <= budget for n in lengths) / len(lengths)
        print(f"{policy}: {stopped:.1%} of {len(samples)} samples stopped before {budget} tokens")
        assert stopped >= 0.9, policy


def test_tables_have_three_models_the_swap_and_no_paper_numbers(demo: Path):
    t1 = pd.read_csv(demo / "results/tables/table1.csv").set_index(["model", "method"])
    t2 = pd.read_csv(demo / "results/tables/table2.csv").set_index(["model", "method"])
    assert list(t1.index.get_level_values(0).unique()) == list(POLICIES)
    assert list(t2.index) == [
        ("demo-codeqwen", "base"), ("demo-codeqwen", "DPO on-policy"),
        ("demo-codeqwen", "DPO off-policy (pairs from demo-deepseek-coder)"),
        ("demo-deepseek-coder", "base"), ("demo-deepseek-coder", "DPO on-policy"),
        ("demo-deepseek-coder", "DPO off-policy (pairs from demo-codeqwen)"),
    ]  # fmt: skip
    # The demo's policies imitate the paper's models but are not them: no paper column.
    assert not [c for c in t1.columns if "paper" in c]
    assert not [c for c in t2.columns if "paper" in c]
    for table in (t1, t2):
        base = table.index.get_level_values(1) == "base"
        assert table.loc[base, "demo_eval diff"].isna().all()
        assert table.loc[~base, "demo_eval diff"].notna().all()
        rows = table.loc[~base]
        assert (rows["demo_eval diff low"] <= rows["demo_eval diff"]).all()
        assert (rows["demo_eval diff"] <= rows["demo_eval diff high"]).all()
        assert rows["demo_eval p"].between(0, 1).all()
    scores = json.loads(
        (demo / "results/eval/demo-codeqwen/base/demo_eval/scores.json").read_text()
    )
    assert scores["total"] >= 170  # the eval split sized for a 10-point difference
    md = (demo / "results/tables/table1.md").read_text()
    assert "demo_eval diff [95% CI]" in md and "paired bootstrap" in md


def test_each_policy_mixes_passing_and_failing_samples(demo: Path):
    """The demo's policies, as the workflow built and sampled them: pairs need both outcomes on
    a problem, so well over half the training problems have them, and greedy pass@1 on the eval
    split is neither 0 nor 1 (room to move both ways)."""
    for policy in POLICIES:
        stats = json.loads((demo / f"results/pairs/{policy}/stats.json").read_text())
        passed = stats["status_counts"].get("passed", 0)
        rate = passed / stats["samples"]
        mixed = stats["problems_sampled"] - stats["problems_all_passed"] - stats[
            "problems_none_passed"
        ]
        print(f"{policy}: sample pass rate {rate:.3f}, mixed problems {mixed}/"
              f"{stats['problems_sampled']}, pairs {stats['pairs']}")  # fmt: skip
        assert 0.2 <= rate <= 0.8, policy
        assert mixed >= stats["problems_sampled"] // 2 and stats["pairs"] == mixed, policy
        scores = json.loads(
            (demo / f"results/eval/{policy}/base/demo_eval/scores.json").read_text()
        )
        assert 0 < scores["passed"] < scores["total"], policy
