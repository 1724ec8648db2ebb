"""The online-RL arm for real, through the workflow: configs/online.yaml (GRPO with the pass_all
and rule rewards beside DPO and RFT, on the CodeQwen-shaped demo policy) with a shorter budget,
from a copy of the session's finished demo (tests/conftest.py), then dry runs in that copy for
what a change of each new key reruns.

The run must leave the demo's base, RFT and DPO of the policy as they were (same samples, same
checkpoints), train and evaluate the two GRPO arms, count every row's budget and write Table 3,
its plot, the GRPO curves and the hack report with the GRPO rows. The numbers of a 2-step GRPO run
on a tiny model say nothing about the methods; what is checked is that every number in the
outputs is the one its inputs give.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import merge, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

POLICY = "demo-codeqwen"
ARMS = ("pass_all", "rule")
# 2 optimizer steps of 64 completions per arm: the demo's budget is 43 x 8 = 344 (5 steps).
# In the demo's folder (configs/online.yaml names results/online): the demo's finished stages of
# the policy are reused, as a user reuses a finished experiment's outputs.
SHORT = {"grpo": {"budget_responses": 128}, "results": "results"}
# The demo's outputs of the policy the online config keeps: not to be touched.
KEPT = [
    f"results/samples/{POLICY}/shard0.jsonl",
    f"results/executions/{POLICY}/shard1.jsonl",
    f"results/checkpoints/{POLICY}/dpo-{POLICY}/train_summary.json",
    f"results/checkpoints/{POLICY}/rft/train_summary.json",
    f"results/eval/{POLICY}/base/demo_eval/scores.json",
    f"results/eval/{POLICY}/dpo-{POLICY}/demo_eval/scores.json",
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_config(workdir: Path, name: str, config: dict) -> str:
    (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return name


@pytest.fixture(scope="module")
def online(demo, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("online") / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    before = {rel: (workdir / rel).stat().st_mtime_ns for rel in KEPT}
    short = write_config(workdir, "short.yaml", SHORT)
    start = time.monotonic()
    proc = snakemake(workdir, "--configfile", "configs/online.yaml", short)
    print(f"online run from the demo: {time.monotonic() - start:.0f} s")
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):$", proc.stdout + proc.stderr, re.M))
    # the two GRPO arms, trained and evaluated; every row's budget; the tables and plots that
    # read the policy set (one policy now) again; nothing of sampling, pairs, DPO or RFT
    assert ran == {"train_grpo": 2, "generate_eval": 2, "execute_eval": 2, "score_eval": 2,
                   "count_budget": 5, "make_table3": 1, "plot_grpo_curves": 1,
                   "hack_report": 1, "make_tables": 1, "plot_pass_at_1": 1,
                   "plot_pass_histogram": 1, "plot_verdicts": 1, "plot_training_curves": 1,
                   "all": 1}, ran  # fmt: skip
    assert {rel: (workdir / rel).stat().st_mtime_ns for rel in KEPT} == before
    return workdir


def checkpoint(workdir: Path, arm: str) -> Path:
    return workdir / f"results/checkpoints/{POLICY}/grpo-{arm}"


def test_each_arm_trains_on_its_reward_within_the_budget(online):
    for arm in ARMS:
        out = checkpoint(online, arm)
        summary = json.loads((out / "train_summary.json").read_text())
        assert (summary["method"], summary["model"]) == ("grpo", f"results/models/{POLICY}")
        assert summary["train_file"] == "results/problems/train.jsonl"
        assert summary["script_args"]["rewards"] == [arm]
        # the config's execution settings judge the rewards, with the built runtime
        execution = summary["script_args"]["execution"]
        assert (execution["memory_mb"], execution["test_seconds"]) == (1024, 2.0)
        assert execution["runtime"] == "resources/runtime/judge"
        assert summary["script_args"]["expected_file"] == "results/problems/train.expected.json"
        # 128 responses = 2 steps of 8 problems x 8 completions
        assert summary["global_step"] == 2 and summary["training_args"]["max_steps"] == 2
        lines = read_jsonl(out / "rollouts.jsonl")
        assert Counter(line["step"] for line in lines) == {0: 64, 1: 64}
        budget = summary["budget"]
        assert (budget["responses"], budget["budget_responses"]) == (128, 128)
        assert budget["completion_tokens"] == sum(line["completion_tokens"] for line in lines)
        assert budget["executor_seconds"] == pytest.approx(
            sum(line["sandbox_s"] for line in lines), abs=1e-3
        )
        # the hack summary counts the rollouts' classes
        hacks = summary["hacks"]
        assert hacks["samples"] == 128
        assert hacks["flagged"] == sum(bool(line["hacks"]) for line in lines)
        # TRL's logged mean reward per step is the mean of the rollouts' reward of the arm
        logged = [h for h in summary["log_history"] if f"rewards/{arm}_reward/mean" in h]
        for h in logged:
            step = [line["rewards"][arm] for line in lines if line["step"] == h["step"] - 1]
            values = [v for v in step if v is not None]
            assert h[f"rewards/{arm}_reward/mean"] == pytest.approx(
                sum(values) / len(values), abs=1e-6
            )


def test_every_row_of_table3_has_its_score_and_budget(online):
    table = pd.read_csv(online / "results/tables/table3.csv")
    assert list(table["method"]) == ["base", "+ RFT", "+ DPO", "+ GRPO pass_all", "+ GRPO rule"]
    variants = ["base", "rft", f"dpo-{POLICY}", "grpo-pass_all", "grpo-rule"]
    for method, variant in zip(table["method"], variants, strict=True):
        row = table[table["method"] == method].iloc[0]
        score = json.loads(
            (online / f"results/eval/{POLICY}/{variant}/demo_eval/scores.json").read_text()
        )
        assert row["demo_eval"] == pytest.approx(score["pass_at_1"], abs=5e-4)
        budget = json.loads((online / f"results/budget/{POLICY}/{variant}.json").read_text())
        assert row["responses"] == budget["responses"]
        assert row["tokens"] == budget["completion_tokens"]
    rows = table.set_index("method")
    samples = [r for i in (0, 1) for r in read_jsonl(
        online / f"results/samples/{POLICY}/shard{i}.jsonl")]  # fmt: skip
    # DPO's and RFT's budget is the policy's own samples; GRPO's its rollouts
    assert rows.loc["+ DPO", "responses"] == rows.loc["+ RFT", "responses"] == len(samples)
    assert rows.loc["+ DPO", "tokens"] == sum(s["num_tokens"] for s in samples)
    assert rows.loc["base", "responses"] == 0
    assert rows.loc["+ GRPO rule", "responses"] == 128
    # the difference to DPO is the two scores' difference, with an interval around it
    for arm in ARMS:
        row = rows.loc[f"+ GRPO {arm}"]
        diff = row["demo_eval"] - rows.loc["+ DPO", "demo_eval"]
        assert row["demo_eval vs DPO diff"] == pytest.approx(diff, abs=1e-3)
        assert row["demo_eval vs DPO diff low"] <= diff <= row["demo_eval vs DPO diff high"]
    md = (online / "results/tables/table3.md").read_text()
    assert "GRPO's budget: 128 generated responses per run." in md
    assert (online / "results/plots/budget.png").stat().st_size > 0


def test_the_curves_and_the_hack_report_have_every_grpo_run(online):
    curves = pd.read_csv(online / "results/tables/grpo_curves.csv")
    for arm in ARMS:
        lines = read_jsonl(checkpoint(online, arm) / "rollouts.jsonl")
        run = curves[curves["label"] == f"{POLICY} grpo {arm}"].set_index("step")
        assert list(run.index) == [0, 1]
        for step in (0, 1):
            at = [line for line in lines if line["step"] == step]
            passed = sum(line["status"] == "passed" for line in at) / len(at)
            assert run.loc[step, "pass_rate"] == pytest.approx(passed)
    assert (online / "results/plots/grpo_curves.png").stat().st_size > 0
    hacks = pd.read_csv(online / "results/tables/hacks.csv").set_index("label")
    assert list(hacks.index) == [f"{POLICY} round 1", *(f"{POLICY} grpo {a}" for a in ARMS)]
    assert list(hacks["samples"]) == [344, 128, 128]


# -- what a change reruns ------------------------------------------------------------------------
def plan(workdir: Path, name: str, override: dict) -> dict[str, int]:
    path = write_config(workdir, name, merge(SHORT, override))
    return planned_jobs(workdir, "--configfile", "configs/online.yaml", path)


# What follows one GRPO checkpoint: its evaluation, its budget, Table 3, the curves, the hacks.
def after_grpo(arms: int) -> dict[str, int]:
    return {"train_grpo": arms, "generate_eval": arms, "execute_eval": arms, "score_eval": arms,
            "count_budget": arms, "make_table3": 1, "plot_grpo_curves": 1, "hack_report": 1,
            "make_tables": 1, "plot_pass_at_1": 1, "plot_training_curves": 1,
            "all": 1}  # fmt: skip


def test_nothing_changed_runs_nothing(online):
    assert plan(online, "same.yaml", {}) == {}


def test_one_arms_field_reruns_that_arm_only(online):
    override = {"grpo": {"arms": {"rule": {"overrides": {"temperature": 0.7}}}}}
    assert plan(online, "arm.yaml", override) == after_grpo(1)


def test_a_common_field_or_the_budget_reruns_every_arm(online):
    assert plan(online, "lr.yaml", {"grpo": {"overrides": {"learning_rate": 5.0e-5}}}) == (
        after_grpo(2)
    )
    assert plan(online, "budget.yaml", {"grpo": {"budget_responses": 192}}) == after_grpo(2)


def test_a_reward_change_reruns_that_arm(online):
    override = {"grpo": {"arms": {"pass_all": {"overrides": {"rewards": ["fraction"]}}}}}
    assert plan(online, "reward.yaml", override) == after_grpo(1)


def test_dpo_settings_leave_grpo_alone(online):
    jobs = plan(online, "beta.yaml", {"dpo": {"overrides": {"beta": 0.2}}})
    assert "train_grpo" not in jobs and jobs["train_dpo"] == 1


def test_execution_settings_rerun_grpo_with_every_execution(online):
    jobs = plan(online, "mem.yaml", {"execution": {"memory_mb": 2048}})
    assert jobs["train_grpo"] == 2 and jobs["execute_samples"] == 2


def test_scheduling_settings_rerun_nothing(online):
    override = {"execution": {"workers": 1}, "training": {"threads": 2}}
    assert plan(online, "sched.yaml", override) == {}
