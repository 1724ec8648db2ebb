"""Partial reruns follow meaning, not spelling: for each config key, the jobs `snakemake -n` plans
in a copy of the finished demo (real dry runs), and that restating every value in other words
reruns nothing. Each dry run takes a few seconds: one per key, several assertions each.

Job counts of the demo: 3 policies x 2 shards; DPO on each policy's own pairs plus the paper's
swap (demo-codeqwen on demo-deepseek-coder's pairs and back), so 5 DPO and 3 RFT checkpoints;
with the 3 base models, 11 evaluated variants on 1 benchmark, 8 of them trained checkpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from workflow_helpers import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

# What follows a changed checkpoint, per evaluated checkpoint: greedy samples, their execution,
# the score; then the tables and the pass@1 plot.
TABLES = {"make_tables": 1, "plot_pass_at_1": 1, "all": 1}
# ... and after a changed training run, the training curves.
CURVES = {"plot_training_curves": 1}


def evals(n: int) -> dict[str, int]:
    return {"generate_eval": n, "execute_eval": n, "score_eval": n}


# Everything that follows the policies' samples (the pairs, both trainings, their evaluations).
FROM_PAIRS = {"build_pairs": 3, "train_dpo": 5, "train_rft": 3, **evals(8), **TABLES, **CURVES,
              "plot_pass_histogram": 1, "plot_verdicts": 1,
              "analyze_implicit_reward": 3}  # fmt: skip
FROM_SAMPLES = {"sample_responses": 6, "execute_samples": 6, **FROM_PAIRS}


@pytest.fixture(scope="module")
def finished(demo, tmp_path_factory) -> Path:
    """A copy of the finished demo (outputs and Snakemake's records), to plan changes in."""
    workdir = tmp_path_factory.mktemp("reruns") / "demo"
    shutil.copytree(demo, workdir, symlinks=True)
    return workdir


def plan(workdir: Path, name: str, override: dict, *args: str) -> dict[str, int]:
    path = workdir / name
    path.write_text(yaml.safe_dump(override, sort_keys=False))
    return planned_jobs(workdir, "--configfile", str(path), *args)


def test_restating_every_value_in_other_words_reruns_nothing(finished):
    """Key order, 1 vs 1.0, .95, 1e-4 written as a string, ./paths, a default written out, an
    override equal to the recipe's value, a subset seed without a subset, and settings that only
    schedule work (workers, threads): none of them is a change."""
    config = yaml.safe_load((finished / "config.yaml").read_text())

    def reverse(mapping):
        return {k: reverse(v) if isinstance(v, dict) else v for k, v in reversed(mapping.items())}

    same = reverse(config)
    same["sampling"].update(n=8.0, temperature=0.80, top_p=0.95, seed=1.0)
    same["execution"].update(workers=1, test_seconds=2, memory_mb=1024.0)
    # batch sizes schedule the work: samples do not depend on them (tests/test_generate.py)
    same["sampling"]["batch_size"] = 8
    same["eval"] = {**same["eval"], "batch_size": 4}
    same["training"].update(threads=2, accelerate_config="./configs/accelerate/cpu.yaml")
    same["dpo"] = {"overrides": {"beta": 0.1, "max_length": 512.0, "learning_rate": "1e-4",
                                 "num_train_epochs": 3.0, "effective_batch_size": 8,
                                 "activation_checkpointing": False},
                   "recipe": "./configs/recipes/dpo.yaml"}  # fmt: skip
    same["models"]["demo-codeqwen"]["demo"].update(num_heads=2, vocab_size=600)  # the defaults
    same["train_problems"]["sources"]["demo"].update(seed=7, hub_revision=None)
    same["benchmarks"]["demo_eval"].update(prompt_template=None, format="problems")
    same["tables"]["paper_results"] = "./configs/paper_results.yaml"
    assert plan(finished, "same.yaml", same) == {}


def test_sampling_reruns_from_sampling(finished):
    assert plan(finished, "t.yaml", {"sampling": {"temperature": 0.7}}) == FROM_SAMPLES


def test_execution_limits_rerun_every_execution(finished):
    # the filter runs reference solutions too, so the training set follows, then everything
    jobs = plan(finished, "m.yaml", {"execution": {"memory_mb": 2048}})
    assert jobs == {"compute_expected": 2, "filter_train_problems": 1, **FROM_SAMPLES,
                    "execute_eval": 11, "score_eval": 11}  # fmt: skip


def test_training_filters_rerun_from_the_training_set(finished):
    jobs = plan(finished, "f.yaml", {"train_filters": {"threshold": 0.6}})
    assert jobs == {"filter_train_problems": 1, "compute_expected": 1, **FROM_SAMPLES}


def test_pair_settings_rerun_from_the_pairs(finished):
    assert plan(finished, "p.yaml", {"pairs": {"seed": 2}}) == FROM_PAIRS


def test_dpo_beta_reruns_dpo_and_downstream_only(finished):
    jobs = plan(finished, "b.yaml", {"dpo": {"overrides": {"beta": 0.2}}})
    assert jobs == {"train_dpo": 5, **evals(5), **TABLES, **CURVES, "analyze_implicit_reward": 3}


def test_rft_settings_rerun_rft_and_its_evaluation(finished):
    jobs = plan(finished, "r.yaml", {"rft": {"overrides": {"learning_rate": 5.0e-5}}})
    assert jobs == {"train_rft": 3, **evals(3), **TABLES, **CURVES}


def test_eval_settings_rerun_eval_only(finished):
    assert plan(finished, "e.yaml", {"eval": {"max_new_tokens": 168}}) == {**evals(11), **TABLES}


def test_scoring_and_analysis_settings_rerun_only_their_jobs(finished):
    override = {"benchmarks": {"demo_eval": {"groups": ["base"]}}, "analysis": {"batch_size": 4}}
    jobs = plan(finished, "g.yaml", override)
    assert jobs == {"score_eval": 11, "analyze_implicit_reward": 3, **TABLES}


def test_table_settings_rerun_the_tables(finished):
    # without Table 2's off-policy rows, fewer scores go into the tables and the plot
    # (and the training curves, without those runs)
    assert plan(finished, "o.yaml", {"tables": {"off_policy": False}}) == {**TABLES, **CURVES}


def test_a_demo_model_setting_reruns_that_model_and_what_it_feeds(finished):
    jobs = plan(finished, "d.yaml", {"models": {"demo-codeqwen": {"demo": {"steps": 200}}}})
    # demo-codeqwen's chain (its own DPO and the one on demo-deepseek-coder's pairs); the DPO of
    # demo-deepseek-coder on demo-codeqwen's pairs and its evaluation; the shared plots
    assert jobs == {"build_demo_model": 1, "sample_responses": 2, "execute_samples": 2,
                    "build_pairs": 1, "train_dpo": 3, "train_rft": 1, **evals(5), **TABLES,
                    **CURVES, "plot_pass_histogram": 1, "plot_verdicts": 1,
                    "analyze_implicit_reward": 1}  # fmt: skip


def test_another_file_is_a_change(finished):
    """A benchmark, training source or recipe pointed at another file (same content) reruns what
    depends on it; a prompt template added to a benchmark reruns its preparation."""
    for name in ("problems.jsonl", "dpo.yaml"):
        src = "src/codedpo/data/demo/problems.jsonl" if name == "problems.jsonl" else (
            "configs/recipes/dpo.yaml")  # fmt: skip
        shutil.copy(finished / src, finished / f"copy-{name}")
    everything = {"prepare_train_source": 1, "filter_train_problems": 1, "compute_expected": 1,
                  **FROM_SAMPLES}  # fmt: skip
    source = {"train_problems": {"sources": {"demo": {"path": "copy-problems.jsonl"}}}}
    assert plan(finished, "s.yaml", source) == everything
    template = "configs/prompts/evalplus_instruct.yaml"
    benchmark = {"benchmarks": {"demo_eval": {"path": "copy-problems.jsonl",
                                              "prompt_template": template}}}  # fmt: skip
    assert plan(finished, "bm.yaml", benchmark) == {
        "prepare_benchmark": 1, "filter_train_problems": 1, "compute_expected": 2,
        **FROM_SAMPLES, **evals(11)}  # fmt: skip
    recipe = {"dpo": {"recipe": "copy-dpo.yaml"}}
    assert plan(finished, "rc.yaml", recipe) == {
        "train_dpo": 5, **evals(5), **TABLES, **CURVES, "analyze_implicit_reward": 3}  # fmt: skip


def test_a_failed_job_shows_its_log_and_a_rebuilt_file_reruns_nothing_after_it(finished):
    """The issue's case: a training source pointed at a bad file fails in its job (its log on
    the console), then is reverted. Snakemake removed the old output before the job ran, so the
    plan redoes it and, not knowing yet that it will come out the same, what follows. Rebuilt
    alone, it has the recorded checksum, and nothing after it reruns: Snakemake 9 compares the
    checksum of an input newer than a job's outputs with the one it recorded (for inputs up to
    --max-checksum-file-size, raised to 256 MB in profiles/default)."""
    target = "results/problems/train_sources/demo.jsonl"
    before = (finished / target).read_bytes()
    (finished / "bad.jsonl").write_text('{"task_id": "x"}\nnot json\n')
    bad = finished / "bad.yaml"
    bad.write_text("train_problems: {sources: {demo: {path: bad.jsonl}}}\n")
    proc = snakemake(finished, "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    console = proc.stdout + proc.stderr
    assert "Error in rule prepare_train_source" in console
    assert "Logfile logs/prepare_problems/train_sources/demo.log:" in console
    assert "codedpo prepare: error: bad.jsonl:2: not valid JSON (Expecting value, column 1)" in (
        console
    )
    assert planned_jobs(finished)["filter_train_problems"] == 1  # the plan cannot know yet
    snakemake(finished, target)  # this one job
    assert (finished / target).read_bytes() == before
    assert planned_jobs(finished) == {}
