"""The workflow for real: the demo through `snakemake --cores 2`, a killed run, the paper's matrix
and the SLURM profile as shipped (what reruns when a key changes: tests/test_reruns.py).

The demo runs once per module in a copy of the workflow files (so the repository's results/ is
never touched); the other tests reuse that run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import copy_workflow, planned_jobs, snakemake, snakemake_env

pytestmark = pytest.mark.workflow


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_demo_outputs(demo):
    config = yaml.safe_load((demo / "config.yaml").read_text())
    models = list(config["models"])
    report = json.loads((demo / "results/problems/train.filter_report.json").read_text())
    unfiltered = read_jsonl(demo / "results/problems/train_sources/demo.jsonl")
    assert report["counts"]["input"] == len(unfiltered)
    assert report["counts"]["by_source"]["demo"]["input"] == len(unfiltered)
    assert report["counts"]["kept"] == len(read_jsonl(demo / "results/problems/train.jsonl"))
    for policy in models:
        problems = {p["task_id"]: p for p in read_jsonl(demo / "results/problems/train.jsonl")}
        samples = [s for f in sorted((demo / f"results/samples/{policy}").glob("shard*.jsonl"))
                   for s in read_jsonl(f)]  # fmt: skip
        executions = {r["sample_id"]: r
                      for f in sorted((demo / f"results/executions/{policy}").glob("*.jsonl"))
                      for r in read_jsonl(f)}  # fmt: skip
        assert len(samples) == len(problems) * config["sampling"]["n"]
        assert set(executions) == {s["sample_id"] for s in samples}
        raw = {s["sample_id"]: s["raw"] for s in samples}
        pairs = read_jsonl(demo / f"results/pairs/{policy}/pairs.jsonl")
        assert pairs, "the demo must produce preference pairs"
        assert len({p["task_id"] for p in pairs}) == len(pairs)  # one pair per problem
        for pair in pairs:
            assert executions[pair["chosen_id"]]["status"] == "passed"
            assert executions[pair["rejected_id"]]["status"] != "passed"
            assert pair["chosen"][0]["content"] == raw[pair["chosen_id"]]
            assert pair["rejected"][0]["content"] == raw[pair["rejected_id"]]
            assert pair["prompt"][0]["content"] == problems[pair["task_id"]]["prompt"]
        swaps = [r["pairs_from"] for r in config["tables"]["off_policy"] if r["policy"] == policy]
        for policy_dir in ("base", "rft", f"dpo-{policy}", *(f"dpo-{m}" for m in swaps)):
            assert (demo / f"results/eval/{policy}/{policy_dir}/demo_eval/scores.json").exists()
        assert (demo / f"results/checkpoints/{policy}/rft/config.json").exists()


def test_scores_match_a_recount(demo):
    for path in demo.glob("results/eval/*/*/*/scores.json"):
        scores = json.loads(path.read_text())
        records = read_jsonl(path.parent / "executions.jsonl")
        passed = sum(r["status"] == "passed" for r in records)
        assert 0.0 <= scores["pass_at_1"] <= 1.0
        assert scores["total"] == len(records)
        assert scores["passed"] == passed
        assert scores["pass_at_1"] == pytest.approx(passed / len(records))


def test_tables_have_every_row_and_column(demo):
    t1 = pd.read_csv(demo / "results/tables/table1.csv")
    t2 = pd.read_csv(demo / "results/tables/table2.csv")
    assert "demo_eval" in t1.columns and "demo_eval" in t2.columns
    assert len(t1) == 3 * 3  # base, + RFT, + DPO for each of the three models
    assert len(t2) == 2 * 3  # base, on-policy, off-policy for the two models that swap pairs
    assert t1["demo_eval"].notna().all() and t2["demo_eval"].notna().all()
    assert t1["demo_eval"].between(0, 1).all()
    md = (demo / "results/tables/table1.md").read_text()
    assert "+ DPO" in md and "+ RFT" in md


def test_per_problem_verdicts_of_the_demo(demo, capsys):
    from codedpo import cli

    eval_dir = demo / "results/eval/demo-codeqwen/base/demo_eval"
    out = demo / "verdicts.csv"
    assert cli.main(["verdicts", str(eval_dir), "--format", "csv", "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    scores = json.loads((eval_dir / "scores.json").read_text())
    assert list(table["task_id"]) == list(scores["verdicts"])
    assert table["verdict"].value_counts().to_dict() == scores["status_counts"]
    failed = table[table["verdict"] != "passed"]
    assert (failed["first_failure"] != "").all() and (failed["tests"] != "").all()
    assert cli.main(["verdicts", str(eval_dir), "--failed"]) == 0
    assert capsys.readouterr().out.count("\n") == len(failed) + 2  # Markdown header + rule


def test_nothing_changed_runs_nothing(demo):
    assert planned_jobs(demo) == {}


def test_killed_run_reruns_to_the_same_outputs(demo, tmp_path):
    """A copy of the finished demo loses one policy's samples, executions and pairs; the run that
    redoes them is SIGKILLed mid-pipeline, then resumed up to the pairs: the same pairs as the
    uninterrupted demo. (What the pairs feed, training to the tables, is resumed after a kill in
    tests/test_signals.py; a killed training's own resume in tests/test_train.py.)"""
    workdir = tmp_path / "killed"
    shutil.copytree(demo, workdir, symlinks=True)
    for stage in ("samples", "executions", "pairs"):
        shutil.rmtree(workdir / "results" / stage / "demo-codeqwen")
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workdir, env=snakemake_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    # Kill it (and every job it started) the moment the first redone sample shard is written
    # (renamed into place): mid-pipeline on a fast machine as on a loaded one, since the pairs
    # still need both shards' execution jobs and then build_pairs, each a process start of a
    # second or more. Freezing the group first (SIGSTOP) fixes what exists at that moment.
    samples = workdir / "results/samples/demo-codeqwen"
    deadline = time.monotonic() + 600
    while not list(samples.glob("shard*.jsonl")):
        assert proc.poll() is None, "snakemake ended before it wrote a sample shard"
        assert time.monotonic() < deadline, "no sample shard after 600 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGSTOP)
    written = sorted(p.name for p in samples.glob("shard*.jsonl"))
    pairs_made = (workdir / "results/pairs/demo-codeqwen/pairs.jsonl").exists()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not pairs_made, "killed too late"
    print(f"killed with sample shards {written} written")
    snakemake(workdir, "--unlock")  # a SIGKILLed snakemake leaves its lock behind
    snakemake(workdir, "--rerun-incomplete", "results/pairs/demo-codeqwen/pairs.jsonl")
    # (stats.json names its inputs by hash: the executions carry each run's own timings)
    for rel in ("results/pairs/demo-codeqwen/pairs.jsonl", "results/pairs/demo-codeqwen/rft.jsonl"):
        assert (workdir / rel).stat().st_mtime > started, f"{rel} was not made again"
        assert (workdir / rel).read_text() == (demo / rel).read_text(), rel


def test_paper_matrix_dry_run_is_offline(tmp_path):
    workdir = copy_workflow(tmp_path / "paper")
    start = time.monotonic()
    jobs = planned_jobs(workdir, "--configfile", "configs/paper.yaml")
    print(f"paper dry run: {time.monotonic() - start:.1f} s")
    # 3 models x (base, RFT, DPO on own pairs) + the paper's swap (CodeQwen1.5 <-> DeepSeek-Coder
    # pairs), x 5 benchmarks (the paper's four and LeetCode problems released after the models)
    assert jobs["generate_eval"] == jobs["execute_eval"] == jobs["score_eval"] == (3 * 3 + 2) * 5
    assert jobs["train_dpo"] == 3 + 2 and jobs["train_rft"] == 3
    assert jobs["sample_responses"] == 3 * 8  # 8 shards per model
    assert jobs["download_benchmark"] == 5
    assert "build_demo_model" not in jobs
    # LeetCode and Codeforces training sources, exported from the Hub when run (not now)
    assert jobs["export_train_source"] == jobs["prepare_train_source"] == 2
    assert not (workdir / "resources").exists()  # nothing was downloaded
    # The paper's hyperparameters: none of the demo's overrides leak into the merged config.
    shell = snakemake(workdir, "-n", "-p", "--configfile", "configs/paper.yaml").stdout
    prepare = [line for line in shell.splitlines() if "codedpo prepare" in line]
    assert any("--format leetcode" in x and "--max-problems 1500 --seed 1" in x for x in prepare)
    assert any("--format codeforces" in x and "--max-problems 1500" in x for x in prepare)
    assert not any("src/codedpo/data/demo" in x for x in prepare)  # the demo source is gone
    # the paper's stored numbers go beside ours, matched by hub id and benchmark format
    (tables,) = [line for line in shell.splitlines() if "codedpo tables" in line]
    assert "--paper configs/paper_results.yaml" in tables
    assert "codeqwen=Qwen/CodeQwen1.5-7B-Chat" in tables and "mbpp_plus=mbpp_plus" in tables
    export = [line for line in shell.splitlines() if "codedpo export-source" in line]
    assert any("--hub newfacade/LeetCodeDataset --split train --out" in x for x in export)
    train = [line for line in shell.splitlines() if "-m codedpo train " in line]
    assert len(train) == 5 + 3
    assert not any("--learning_rate" in line or "--num_train_epochs" in line for line in train)


def test_a_training_file_no_source_exports_is_a_clear_error(tmp_path):
    workdir = copy_workflow(tmp_path / "paper")
    target = "resources/train_sources/unknown.jsonl"
    proc = snakemake(workdir, "-n", target, "--configfile", "configs/paper.yaml", check=False)
    assert proc.returncode != 0
    assert f"no train_problems source with path '{target}' and a 'hub'" in proc.stdout + proc.stderr


def test_slurm_profile_works_as_shipped(tmp_path):
    """profiles/slurm plans the paper's matrix without conda or a cluster; unedited EDIT_ME
    placeholders stop a real run with one error before anything is submitted."""
    workdir = copy_workflow(tmp_path / "paper", extra=("profiles",))
    args = ("--profile", "profiles/slurm", "--configfile", "configs/paper.yaml")
    jobs = planned_jobs(workdir, *args)
    # 3 on-policy DPO runs and Table 2's two swaps (CodeQwen1.5 <-> DeepSeek-Coder).
    assert jobs["train_dpo"] == 5 and jobs["sample_responses"] == 24
    # The rules the profile names for job arrays (commented out: docs/cluster.md#job-arrays) are
    # the workflow's, and those the paper plans fan out: a renamed rule would drop out silently.
    profile = (workdir / "profiles/slurm/config.yaml").read_text()
    (array_rules,) = re.findall(r'^# slurm-array-jobs: "([\w,]+)"$', profile, re.M)
    rule_files = "".join(path.read_text() for path in (workdir / "rules").glob("*.smk"))
    for rule in array_rules.split(","):
        assert re.search(rf"^(rule {rule}:|use rule \w+ as {rule} with:)$", rule_files, re.M), rule
        assert jobs.get(rule, 2) > 1, rule  # sample_eval: pass@k, not in the paper's plan
    proc = snakemake(workdir, *args, check=False)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 1
    assert errors == [
        "profile error: default-resources: slurm_partition=EDIT_ME is a placeholder (lines "
        "marked EDIT in profiles/slurm/config.yaml): set your site's value (sinfo -s; sacctmgr "
        "show assoc user=$USER) or delete the line; 7 more like it"
    ]
    assert not (workdir / "logs/slurm").exists() and not (workdir / "results").exists()
