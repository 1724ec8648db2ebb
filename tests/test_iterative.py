"""Iterative on-policy rounds and arms for real: a 2-round run of the demo policy shaped like
CodeQwen1.5 (the demo's settings), then dry runs in a copy of it for what a change reruns, and the
config errors of rounds and arms at the dry run.

The run has the paper's arm (random pairs) for two rounds, each evaluated and scored, and one
more arm (`max_min` pairs) for its first round's pairs and DPO, so that a change to one arm can
be seen to leave the other alone. Round 1 of the paper's arm is the demo's own run (same
settings): the run starts from a copy of the session's finished demo (tests/conftest.py) and
must leave round 1 as the demo made it, running only round 2 and the other arm. It leaves out
what the paper's run already tests (RFT, the base model's evaluation, the implicit-reward
analysis, the tables: they need every run of every arm); the full DAG of rounds and arms is
checked by the dry runs below.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from workflow_helpers import copy_workflow, planned_jobs, snakemake

from codedpo.problems.slices import slice_indices

pytestmark = pytest.mark.workflow

POLICY = "demo-codeqwen"
ROUND1 = f"results/checkpoints/{POLICY}/dpo-{POLICY}"
ROUND2 = f"results/checkpoints/{POLICY}/paper/dpo/r2/dpo-{POLICY}"
ARM1 = f"results/checkpoints/{POLICY}/max_min/dpo/r1/dpo-{POLICY}"
CONFIG = {
    "models": {"demo-deepseek-coder": None, "demo-codellama": None},
    "rounds": 2,
    "arms": {"max_min": {"pairs": {"strategy": "max_min"}}},
    "tables": {"models": [POLICY], "off_policy": False},
}


def targets(rounds: int = 2) -> list[str]:
    """The paper arm's rounds, each scored, and the other arm's first DPO run."""
    out = [f"results/eval/{POLICY}/dpo-{POLICY}/demo_eval/scores.json", ARM1]
    out += [
        f"results/eval/{POLICY}/paper/dpo/r{k}/dpo-{POLICY}/demo_eval/scores.json"
        for k in range(2, rounds + 1)
    ]
    return out


def write_config(workdir: Path, name: str, config: dict) -> str:
    (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return name


def plan(workdir: Path, config: dict, rounds: int = 2) -> dict[str, int]:
    name = write_config(workdir, "plan.yaml", config)
    return planned_jobs(workdir, *targets(rounds), "--configfile", name)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def shards(workdir: Path, where: str) -> list[dict]:
    """Every shard's records (the demo samples in 2 shards)."""
    files = sorted((workdir / where).glob("shard*.jsonl"))
    assert [f.name for f in files] == ["shard0.jsonl", "shard1.jsonl"], where
    return [r for f in files for r in read_jsonl(f)]


# Round 1 of the paper's arm: the demo's samples, executions, pairs, checkpoint and scores.
ROUND_ONE = [
    *(
        f"results/{stage}/{POLICY}/shard{i}.jsonl"
        for stage in ("samples", "executions")
        for i in (0, 1)
    ),
    f"results/pairs/{POLICY}/pairs.jsonl",
    f"{ROUND1}/train_summary.json",
    f"results/eval/{POLICY}/dpo-{POLICY}/demo_eval/scores.json",
]


@pytest.fixture(scope="module")
def two_rounds(demo, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("iterative") / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    before = {rel: (workdir / rel).stat().st_mtime_ns for rel in ROUND_ONE}
    name = write_config(workdir, "two.yaml", CONFIG)
    start = time.monotonic()
    proc = snakemake(workdir, *targets(), "--configfile", name)
    print(f"2-round run from the demo: {time.monotonic() - start:.0f} s")
    # what ran: round 2 (sampled, executed, paired, trained, evaluated) and the other arm's
    # pairs and DPO; round 1 is the demo's, untouched
    text = proc.stdout + proc.stderr
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):$", text, re.M))
    assert ran == {"sample_responses": 2, "execute_samples": 2, "build_pairs": 2, "train_dpo": 2,
                   "generate_eval": 1, "execute_eval": 1, "score_eval": 1}, ran  # fmt: skip
    assert {rel: (workdir / rel).stat().st_mtime_ns for rel in ROUND_ONE} == before
    return workdir


def test_round_two_samples_and_trains_from_round_one(two_rounds):
    summary = json.loads((two_rounds / ROUND2 / "train_summary.json").read_text())
    assert summary["model"] == ROUND1  # trained from round 1's checkpoint
    assert summary["train_file"] == f"results/pairs/{POLICY}/paper/dpo/r2/pairs.jsonl"
    first = json.loads((two_rounds / ROUND1 / "train_summary.json").read_text())
    assert first["model"] == f"results/models/{POLICY}"
    problems = read_jsonl(two_rounds / "results/problems/train.jsonl")
    for k, where in ((1, ""), (2, "/paper/dpo/r2")):
        samples = shards(two_rounds, f"results/samples/{POLICY}{where}")
        assert len(samples) == 8 * len(problems), k
        executions = shards(two_rounds, f"results/executions/{POLICY}{where}")
        assert {r["sample_id"] for r in executions} == {s["sample_id"] for s in samples}
        stats = json.loads((two_rounds / f"results/pairs/{POLICY}{where}/stats.json").read_text())
        assert stats["pairs"] > 0, k
        print(f"round {k}: {sum(r['status'] == 'passed' for r in executions)}/"
              f"{len(executions)} samples passed, {stats['pairs']} pairs")  # fmt: skip
    assert (two_rounds / f"logs/sample_responses/{POLICY}/paper/dpo/r2/shard0.log").exists()
    # round 2's policy is another model: same prompts and seeds, other responses
    raw = [{s["sample_id"]: s["raw"] for s in shards(two_rounds, f"results/samples/{POLICY}{w}")}
           for w in ("", "/paper/dpo/r2")]  # fmt: skip
    assert raw[0].keys() == raw[1].keys() and raw[0] != raw[1]
    # the other arm shares round 1's samples: its pairs come from the same files
    arm = json.loads((two_rounds / ARM1 / "train_summary.json").read_text())
    assert arm["train_file"] == f"results/pairs/{POLICY}/max_min/dpo/r1/pairs.jsonl"
    assert arm["model"] == f"results/models/{POLICY}"
    assert not (two_rounds / f"results/samples/{POLICY}/max_min").exists()
    stats = {w: json.loads((two_rounds / f"results/pairs/{POLICY}{w}/stats.json").read_text())
             for w in ("", "/paper/dpo/r2", "/max_min/dpo/r1")}  # fmt: skip
    assert [stats[w]["strategy"] for w in stats] == ["random", "random", "max_min"]
    # every round is scored, and says which run it is
    for k, where in ((1, f"dpo-{POLICY}"), (2, f"paper/dpo/r2/dpo-{POLICY}")):
        scores = json.loads(
            (two_rounds / f"results/eval/{POLICY}/{where}/demo_eval/scores.json").read_text()
        )
        assert (scores["round"], scores["arm"], scores["recipe"]) == (k, "paper", "dpo")
        assert scores["total"] == len(read_jsonl(two_rounds / "results/problems/demo_eval.jsonl"))
        print(f"round {k}: eval pass@1 {scores['pass_at_1']:.3f}")


@pytest.fixture
def finished(two_rounds, tmp_path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(two_rounds, workdir, symlinks=True)
    return workdir


def test_nothing_changed_runs_nothing(finished):
    assert plan(finished, CONFIG) == {}
    # the paper's pair settings written out are the same pairs
    same = {
        **CONFIG,
        "pairs": {"strategy": "random", "score": "fraction", "rejected_verdicts": None},
    }
    assert plan(finished, same) == {}


def test_a_third_round_runs_only_round_three(finished):
    jobs = plan(finished, {**CONFIG, "rounds": 3}, rounds=3)
    assert jobs == {"sample_responses": 2, "execute_samples": 2, "build_pairs": 1,
                    "train_dpo": 1, "generate_eval": 1, "execute_eval": 1,
                    "score_eval": 1}  # fmt: skip
    shell = snakemake(finished, "-n", "-p", *targets(3), "--configfile", "plan.yaml").stdout
    (sample,) = [line for line in shell.splitlines()
                 if "codedpo sample" in line and "paper/dpo/r3/shard0.jsonl " in line]  # fmt: skip
    assert f"--model {ROUND2} " in sample


def test_one_arms_pair_strategy_reruns_only_its_pairs_and_what_follows(finished):
    config = {**CONFIG, "arms": {"max_min": {"pairs": {"strategy": "max_random"}}}}
    assert plan(finished, config) == {"build_pairs": 1, "train_dpo": 1}
    shell = snakemake(finished, "-n", "-p", *targets(), "--configfile", "plan.yaml").stdout
    (pairs,) = [line for line in shell.splitlines() if "codedpo build-pairs" in line]
    assert "--out-pairs results/pairs/demo-codeqwen/max_min/dpo/r1/pairs.jsonl" in pairs
    assert pairs.split("--out-stats", 1)[1].split(">")[0].endswith("--strategy max_random ")
    # the paper arm's strategy reruns its own pairs and both its rounds, not the other arm
    # (which sets its own strategy)
    config = {**CONFIG, "pairs": {"strategy": "max_random"}}
    assert plan(finished, config) == {
        "build_pairs": 2, "train_dpo": 2, "sample_responses": 2, "execute_samples": 2,
        "generate_eval": 2, "execute_eval": 2, "score_eval": 2}  # fmt: skip


def test_the_reference_model_setting_reruns_only_later_rounds(finished):
    jobs = plan(finished, {**CONFIG, "rounds_reference": "original"})
    assert jobs == {"train_dpo": 1, "generate_eval": 1, "execute_eval": 1, "score_eval": 1}
    shell = snakemake(finished, "-n", "-p", *targets(), "--configfile", "plan.yaml").stdout
    (train,) = [line for line in shell.splitlines() if "-m codedpo train " in line]
    assert f"--ref_model_name_or_path results/models/{POLICY}" in train


def test_the_iterative_config_plans_every_round_of_both_arms(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    jobs = planned_jobs(workdir, "--configfile", "configs/iterative.yaml")
    # round 1 samples once (2 shards); rounds 2-3 of each arm sample their own
    assert jobs["sample_responses"] == jobs["execute_samples"] == 2 + 2 * 2 * 2
    assert jobs["build_pairs"] == jobs["train_dpo"] == 3 * 2
    assert jobs["generate_eval"] == jobs["score_eval"] == 2 + 3 * 2  # + base and RFT
    assert jobs["hack_report"] == jobs["plot_rounds"] == jobs["make_tables"] == 1
    shell = snakemake(workdir, "-n", "-p", "--configfile", "configs/iterative.yaml").stdout
    (tables,) = [line for line in shell.splitlines() if "codedpo tables" in line]
    assert "--rounds-table" in tables and tables.count("scores.json") == 8
    scores = [line for line in shell.splitlines() if "codedpo score" in line]
    assert any("--round 3 --arm max_min --out" in line for line in scores)
    (hacks,) = [line for line in shell.splitlines() if "codedpo hack-report" in line]
    assert "'demo-codeqwen max_min round 3'" in hacks and hacks.count("stats.json") == 6


def test_pass_at_k_adds_a_sampled_evaluation_per_variant(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    name = write_config(workdir, "k.yaml", {**CONFIG, "eval": {"samples_per_problem": 5,
                                                             "pass_at_k": [1, 5]}})  # fmt: skip
    jobs = planned_jobs(workdir, "--configfile", name)
    variants = 2 + 2 + 2  # base, RFT; paper rounds 1-2; max_min rounds 1-2
    assert jobs["generate_eval"] == jobs["sample_eval"] == jobs["score_eval"] == variants
    assert jobs["execute_eval"] == 2 * variants
    shell = snakemake(workdir, "-n", "-p", "--configfile", name).stdout
    sample = [
        line for line in shell.splitlines() if "codedpo sample" in line and "sampled/" in line
    ]
    assert len(sample) == variants
    assert all("--n 5 --temperature 0.8" in line and "--greedy" not in line for line in sample)
    score = [line for line in shell.splitlines() if "codedpo score" in line]
    assert all("/sampled/executions.jsonl --pass-at-k 1 5" in line for line in score)


def test_disjoint_problems_slice_the_pool(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    name = write_config(workdir, "d.yaml", {**CONFIG, "rounds_problems": "disjoint"})
    jobs = planned_jobs(workdir, "--configfile", name)
    assert jobs["slice_train_problems"] == 2
    shell = snakemake(workdir, "-n", "-p", "--configfile", name).stdout
    sample = [line for line in shell.splitlines() if "--num-shards" in line]
    assert sorted({line.split("--problems ")[1].split()[0] for line in sample}) == [
        "results/problems/rounds/r1.jsonl", "results/problems/rounds/r2.jsonl"]  # fmt: skip
    # the slices: disjoint, covering the pool, seeded; a fixed size does not move with rounds
    parts = [slice_indices(43, k, seed=0, rounds=3) for k in (1, 2, 3)]
    assert sorted(i for p in parts for i in p) == list(range(43))
    assert [len(p) for p in parts] == [15, 14, 14]
    assert slice_indices(43, 1, seed=1, rounds=3) != parts[0]
    assert slice_indices(43, 2, seed=0, size=10) == slice_indices(43, 2, seed=0, size=10)
    with pytest.raises(ValueError, match="round 5 needs problems 41-50 of the pool"):
        slice_indices(43, 5, seed=0, size=10)


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"rounds": 0}, "config error: c.yaml: rounds: 0 must be >= 1"),
        ({"arms": {"a": {"pairz": {}}}},
         "config error: c.yaml: arms.a.pairz: unknown key (did you mean 'pairs'?)"),
        ({"arms": {"a": {"pairs": {"strategy": "maxmin"}}}},
         "config error: c.yaml: arms.a.pairs.strategy: 'maxmin' is not one of random, "
         "max_min, max_random, by_error (did you mean 'max_min'?)"),
    ],
)  # fmt: skip
def test_config_errors_name_the_field_at_the_dry_run(tmp_path, override, expected):
    workdir = copy_workflow(tmp_path / "wf")
    name = write_config(workdir, "c.yaml", override)
    proc = snakemake(workdir, "-n", "--configfile", name, check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [expected]
