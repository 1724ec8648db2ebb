"""The workflow's logic without Snakemake: flags, paths of chains and rounds, resources and the
profile check (codedpo.workflow.flags, .runs, .jobs, .resources, .profile), on the shipped configs
run through the real config check. The rules only call these; tests/test_plans.py checks that the
rules still plan the same jobs with them."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from workflow_helpers import merge

from codedpo.workflow import flags
from codedpo.workflow.config import Layer, check, load_schema
from codedpo.workflow.jobs import Workflow, in_order
from codedpo.workflow.profile import placeholder_error
from codedpo.workflow.runs import off_policy_runs, variant_chain

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "schemas/config.schema.yaml")
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
ITERATIVE = yaml.safe_load((REPO / "configs/iterative.yaml").read_text())
PAPER = yaml.safe_load((REPO / "configs/paper.yaml").read_text())


def workflow(*overrides: dict) -> Workflow:
    """config.yaml merged with ``overrides``, checked as the Snakefile checks it."""
    config = DEMO
    for override in overrides:
        config = merge(config, override)
    config = copy.deepcopy(config)
    return Workflow(config, check(config, SCHEMA, [Layer("config.yaml", config)], root=REPO))


def wc(**wildcards: str) -> SimpleNamespace:
    return SimpleNamespace(**wildcards)


@pytest.fixture(scope="module")
def demo() -> Workflow:
    return workflow()


@pytest.fixture(scope="module")
def iterative() -> Workflow:
    return workflow(ITERATIVE)


@pytest.fixture(scope="module")
def paper() -> Workflow:
    return workflow(PAPER)


# -- flags ---------------------------------------------------------------------------------------
def test_numbers_and_values_have_one_spelling():
    assert flags.number(1) == flags.number(1.0) == "1.0"
    assert flags.number(1e-4) == flags.number("0.0001") == "0.0001"
    assert flags.flag_value(True) == "true" and flags.flag_value(False) == "false"
    assert flags.flag_value(3) == "3" and flags.flag_value(0.5) == "0.5"
    assert flags.flag_value({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'


def test_cli_flags_sort_keys_quote_values_and_spread_lists():
    one = flags.cli_flags({"beta": 0.1, "loss_type": ["sigmoid", "ipo"], "name": "a b"})
    other = flags.cli_flags({"name": "a b", "loss_type": ["sigmoid", "ipo"], "beta": 0.1})
    assert one == other == "--beta 0.1 --loss_type sigmoid ipo --name 'a b'"
    assert flags.cli_flags({}) == ""


def test_overrides_equal_to_the_recipe_are_dropped(demo):
    assert flags.override_flags({"beta": 0.1, "lr": 1e-4}, {"beta": 0.1, "lr": 5e-6}) == (
        "--lr 0.0001"
    )
    assert flags.override_flags(None, {"beta": 0.1}) == ""
    # config.yaml's dpo.overrides repeat the recipe's beta 0.1: it is not a flag; the epochs
    # (YAML 3) take the field's float type
    paper_run = demo.dpo_flags(wc(policy="demo-codeqwen", chain="", pairs_from="demo-codeqwen"))
    assert paper_run == (
        "--activation_checkpointing false --effective_batch_size 8 --learning_rate 0.0001 "
        "--max_length 512 --num_train_epochs 3.0"
    )
    assert "--beta" not in paper_run
    assert demo.train_flags("rft") == paper_run


def test_overrides_follow_the_recipe_of_each_chain():
    w = workflow({"arms": {"strong": {"dpo": {"overrides": {"beta": 0.5}}}}})
    strong = w.dpo_flags(wc(policy="demo-codeqwen", chain="/strong/dpo/r1", pairs_from="x"))
    assert "--beta 0.5" in strong and strong.startswith("--activation_checkpointing false")


def test_demo_flags_leave_out_the_model_builders_defaults(demo):
    assert demo.demo_flags(wc(policy="demo-codellama")) == "--family codellama --seed 3"
    assert flags.demo_flags({"family": "codeqwen", "seed": None, "steps": 7}) == (
        "--family codeqwen --steps 7"
    )


def test_execution_flags_leave_out_the_executors_defaults(demo):
    execution = demo.config["execution"]
    base = (
        "--memory-mb 1024 --test-seconds 2.0 --min-test-seconds 1.0 --time-factor 4.0 "
        "--sample-seconds 60.0"
    )
    assert demo.execution_flags() == base
    changed = {**execution, "backend": "apptainer", "apptainer_image": "sandbox.sif",
               "fast_check": True, "stack_mb": 512}  # fmt: skip
    assert flags.execution_flags(changed) == (
        f"{base} --backend apptainer --fast-check --apptainer-image sandbox.sif --stack-mb 512"
    )
    # an image only matters to the apptainer backend
    assert flags.execution_flags({**execution, "apptainer_image": "x.sif"}) == base


def test_pairs_flags_leave_out_the_papers_settings(demo, iterative):
    paper_run = wc(policy="demo-codeqwen", chain="")
    assert demo.pairs_flags(paper_run) == "--seed 1 --max-pairs-per-problem 1"
    max_min = wc(policy="demo-codeqwen", chain="/max_min/dpo/r2")
    assert iterative.pairs_flags(max_min) == (
        "--seed 1 --max-pairs-per-problem 1 --strategy max_min"
    )
    by_error = {**demo.config["pairs"], "strategy": "by_error", "score": "rule",
                "rejected_verdicts": ["failed", "timeout"]}  # fmt: skip
    assert flags.pairs_flags(by_error).endswith(
        "--strategy by_error --score rule --rejected-verdict failed timeout"
    )


def test_generation_flags_of_each_backend(demo):
    # the batch sizes are resources (scheduling only), not params
    assert demo.sampling_flags() == (
        "--num-shards 2 --n 8 --temperature 0.8 --top-p 0.95 --max-new-tokens 160 --seed 1"
    )
    assert demo.eval_flags() == "--max-new-tokens 160"
    assert demo.generation_resources("sampling")["batch_size"] == 64
    small = workflow({"sampling": {"batch_size": 8}, "eval": {"batch_size": 4}})
    assert small.sampling_flags() == demo.sampling_flags()
    assert small.generation_resources("sampling")["batch_size"] == 8
    assert small.generation_resources("eval")["batch_size"] == 4
    assert demo.generation_flags("sampling") == demo.generation_flags("eval") == "--backend hf"
    w = workflow({"sampling": {"backend": "vllm", "vllm": {"max_model_len": 4096}}})
    assert w.generation_flags("sampling") == (
        "--backend vllm --tensor-parallel-size 1 --gpu-memory-utilization 0.9 "
        "--deterministic-scheduling --no-batch-invariant --no-enforce-eager --max-model-len 4096"
    )
    assert w.generation_flags("eval") == "--backend hf"  # eval.backend is its own
    sampled = workflow({"eval": {"samples_per_problem": 10}})
    assert sampled.eval_sampling_flags() == (
        "--n 10 --temperature 0.8 --top-p 0.95 --max-new-tokens 160 --seed 0"
    )


def test_problem_sources_flags(demo, paper):
    assert demo.source_flags(wc(source="demo")) == "--format problems --split train"
    assert demo.source_flags(wc(benchmark="demo_eval")) == "--format problems --split eval"
    assert demo.source_template(wc(source="demo")) == []
    leetcode = paper.source_flags(wc(source="leetcode"))
    assert "--format leetcode" in leetcode and "--max-problems 1500 --seed 1" in leetcode
    path = paper.train_sources["leetcode"]["path"]
    export = paper.export_flags(wc(file=path.removeprefix("resources/train_sources/")))
    assert export == "--hub newfacade/LeetCodeDataset --split train"
    with pytest.raises(ValueError, match="no train_problems source with path 'resources/train"):
        paper.export_flags(wc(file="unknown.jsonl"))
    assert flags.exclude_flags({"b/1": "bad ref", "a/0": "x"}, "--exclude") == (
        "--exclude a/0=x 'b/1=bad ref'"
    )
    assert flags.exclude_flags(None, "--exclude") == ""
    assert demo.check_references_flag(wc(name="demo_eval")) == "--check-references"
    assert demo.check_references_flag(wc(name="train")) == ""


def test_slices_of_the_training_problems():
    disjoint = workflow({"rounds": 3, "rounds_problems": "disjoint"})
    assert disjoint.slice_flags() == "--rounds 3"
    assert disjoint.round_problems(wc(policy="demo-codeqwen", chain="/paper/dpo/r2")) == (
        "results/problems/rounds/r2.jsonl"
    )
    sized = workflow({"rounds_problems": "disjoint", "rounds_slice_size": 20})
    assert sized.slice_flags() == "--size 20"
    assert workflow().round_problems(wc(chain="")) == "results/problems/train.jsonl"


def test_table_flags(demo, iterative, paper):
    assert demo.table_flags() == (
        "--off-policy demo-codeqwen=demo-deepseek-coder demo-deepseek-coder=demo-codeqwen "
        "--bootstrap-resamples 10000 --bootstrap-seed 0 --confidence 0.95"
    )
    assert iterative.table_flags().endswith("--confidence 0.95 --rounds-table")
    # demo policies have no hub id: no paper numbers beside them
    assert demo.paper_flags() == (
        "--paper configs/paper_results.yaml --benchmark-ids demo_eval=problems"
    )
    assert "--model-ids codeqwen=Qwen/CodeQwen1.5-7B-Chat" in paper.paper_flags()
    stand_in = workflow({"tables": {"paper_stand_ins": {"demo-codeqwen": "org/model"}}})
    assert "--model-ids demo-codeqwen=org/model" in stand_in.paper_flags()
    wrong = workflow({"tables": {"paper_stand_ins": {"nobody": "org/model"}}})
    with pytest.raises(ValueError, match="paper_stand_ins.nobody': not one of the models"):
        wrong.paper_flags()
    assert workflow({"tables": {"paper_results": None}}).paper_flags() == ""


# -- paths of chains and rounds ------------------------------------------------------------------
def test_models_and_benchmarks_in_the_tables_order():
    assert in_order(["c", "a", "b", "d"], ["b", "c"]) == ["b", "c", "a", "d"]


def test_segments_of_the_papers_run_and_the_others(iterative):
    runs = iterative.runs
    paper, max_min = runs.chains
    assert (paper.arm, max_min.arm) == ("paper", "max_min")
    assert runs.segment(paper, 1) == ""  # the paper's paths
    assert runs.segment(paper, 2) == "/paper/dpo/r2"
    assert runs.segment(max_min, 1) == "/max_min/dpo/r1"
    # round 1 samples are every chain's; round 1 pairs are the arm's
    assert runs.samples_segment(max_min, 1) == "" and runs.samples_segment(max_min, 2) != ""
    assert runs.pairs_segment(max_min, 1) == "/max_min/dpo/r1"
    assert (
        runs.checkpoint_dir("p", max_min, 3)
        == "results/iterative/checkpoints/p/max_min/dpo/r3/dpo-p"
    )


def test_run_of_round_trips_every_chain_and_every_variant(iterative):
    runs = iterative.runs
    assert len(runs.all()) == 6
    for chain, k in runs.all():
        assert iterative.run_of(wc(chain=runs.segment(chain, k))) == (chain, k)
    policy = "demo-codeqwen"
    variants = iterative.eval_variants(policy)
    assert variants[:3] == ["base", "rft", "dpo-demo-codeqwen"]  # off_policy: false
    assert len(variants) == 3 + 5  # every run but the paper's
    seen = set()
    for variant in variants[2:]:
        chain, k = iterative.run_of(wc(variant=variant, policy=policy))
        assert runs.segment(chain, k) == variant_chain(variant)
        seen.add((chain.arm, k))
    assert len(seen) == 6
    with pytest.raises(ValueError, match="not a run of this config"):
        iterative.run_of(wc(chain="/other/dpo/r2"))
    with pytest.raises(ValueError, match="not a run of this config"):
        iterative.run_of(wc(chain="/paper/dpo/r1"))  # the paper's run has no segment


def test_snakemakes_wildcards_work_like_a_namespace(iterative):
    from snakemake.io import Wildcards

    chained = Wildcards(fromdict={"policy": "demo-codeqwen", "chain": "/paper/dpo/r2"})
    assert iterative.run_of(chained) == (iterative.runs.chains[0], 2)
    scored = Wildcards(fromdict={"policy": "demo-codeqwen", "variant": "max_min/dpo/r1/dpo-x"})
    assert iterative.run_of(scored) == (iterative.runs.chains[1], 1)


def test_samples_and_pairs_of_each_run(iterative):
    p = "demo-codeqwen"
    first = wc(policy=p, chain="/max_min/dpo/r1", pairs_from=p)
    assert iterative.run_samples(first) == [
        f"results/iterative/samples/{p}/shard0.jsonl",
        f"results/iterative/samples/{p}/shard1.jsonl",
    ]
    assert iterative.run_executions(first)[0] == f"results/iterative/executions/{p}/shard0.jsonl"
    assert iterative.run_pairs(first) == f"results/iterative/pairs/{p}/max_min/dpo/r1/pairs.jsonl"
    second = wc(policy=p, chain="/max_min/dpo/r2", pairs_from=p)
    assert (
        iterative.run_samples(second)[1]
        == f"results/iterative/samples/{p}/max_min/dpo/r2/shard1.jsonl"
    )
    paper = wc(policy=p, chain="", pairs_from="other")
    assert iterative.run_pairs(paper) == "results/iterative/pairs/other/pairs.jsonl"  # Table 2
    with pytest.raises(ValueError, match="off-policy DPO"):
        iterative.run_pairs(wc(policy=p, chain="/paper/dpo/r2", pairs_from="other"))


def test_a_second_recipe_shares_the_papers_samples_and_pairs():
    w = workflow({"dpo": {"recipes": ["configs/recipes/dpo-ipo.yaml"]}})
    p = "demo-codeqwen"
    ipo = wc(policy=p, chain="/paper/ipo/r1", pairs_from=p)
    assert w.run_pairs(ipo) == f"results/pairs/{p}/pairs.jsonl"
    assert w.dpo_recipe(ipo) == "configs/recipes/dpo-ipo.yaml"
    assert w.eval_variants(p)[-1] == f"paper/ipo/r1/dpo-{p}"
    assert w.pair_runs() == [(m, "", f"{m} round 1") for m in w.config["tables"]["models"]]


def test_each_round_starts_from_the_previous_checkpoint(iterative):
    p = "demo-codeqwen"
    assert iterative.start_model_input(wc(policy=p, chain="")) == f"results/iterative/models/{p}"
    assert iterative.start_model_ref(wc(policy=p, chain="/paper/dpo/r2")) == (
        f"results/iterative/checkpoints/{p}/dpo-{p}"
    )
    assert iterative.start_model_input(wc(policy=p, chain="/max_min/dpo/r2")) == (
        f"results/iterative/checkpoints/{p}/max_min/dpo/r1/dpo-{p}"
    )
    assert iterative.sampling_model_input(wc(policy=p, chain="/paper/dpo/r3")) == (
        f"results/iterative/checkpoints/{p}/paper/dpo/r2/dpo-{p}"
    )
    with pytest.raises(
        ValueError, match="round 1 of every arm samples at results/iterative/samples/"
    ):
        iterative.sampling_model_input(wc(policy=p, chain="/max_min/dpo/r1"))
    assert iterative.reference_input(wc(policy=p, chain="/paper/dpo/r2")) == []


def test_the_original_model_as_reference_of_later_rounds():
    w = workflow(ITERATIVE, {"rounds_reference": "original"})
    p = "demo-codeqwen"
    later = wc(policy=p, chain="/paper/dpo/r2", pairs_from=p)
    assert w.reference_input(later) == f"results/iterative/models/{p}"
    assert w.dpo_flags(later).endswith(f"--ref_model_name_or_path results/iterative/models/{p}")
    first = wc(policy=p, chain="/max_min/dpo/r1", pairs_from=p)
    assert w.reference_input(first) == [] and "--ref_model" not in w.dpo_flags(first)


def test_off_policy_runs_and_their_errors(demo):
    models = ["a", "b", "c"]
    assert off_policy_runs(True, models) == [
        ("a", "b"), ("a", "c"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")
    ]  # fmt: skip
    assert off_policy_runs(False, models) == []
    assert off_policy_runs([{"policy": "b", "pairs_from": "a"}], models) == [("b", "a")]
    with pytest.raises(ValueError, match=r"off_policy.0.pairs_from': 'z' is not one of"):
        off_policy_runs([{"policy": "a", "pairs_from": "z"}], models)
    with pytest.raises(ValueError, match="on its own pairs is on-policy DPO"):
        off_policy_runs([{"policy": "a", "pairs_from": "a"}], models)
    assert demo.eval_variants("demo-codeqwen") == [
        "base", "rft", "dpo-demo-codeqwen", "dpo-demo-deepseek-coder"
    ]  # fmt: skip
    assert demo.eval_variants("demo-codellama") == ["base", "rft", "dpo-demo-codellama"]


def test_eval_variants_name_their_method_and_pairs(iterative):
    p = "demo-codeqwen"
    for variant, method, pairs_from in [
        ("base", "base", p), ("rft", "rft", p), ("dpo-other", "dpo", "other"),
        ("max_min/dpo/r2/dpo-" + p, "dpo", p),
    ]:  # fmt: skip
        job = wc(policy=p, variant=variant)
        assert iterative.variant_method(job) == method
        assert iterative.variant_pairs_from(job) == pairs_from
    assert iterative.variant_model(wc(policy=p, variant="base")) == f"results/iterative/models/{p}"
    assert iterative.variant_model_input(wc(policy=p, variant="rft")) == (
        f"results/iterative/checkpoints/{p}/rft"
    )


def test_score_flags_name_the_run_and_the_sampled_executions(iterative):
    p = "demo-codeqwen"
    assert iterative.score_flags(wc(policy=p, variant="base", benchmark="demo_eval")) == ""
    assert iterative.score_flags(
        wc(policy=p, variant=f"max_min/dpo/r2/dpo-{p}", benchmark="demo_eval")
    ) == ("--round 2 --arm max_min")
    assert iterative.sampled_executions_input(wc(policy=p, variant="base")) == []
    w = workflow({"eval": {"samples_per_problem": 10}})
    flags_ = w.score_flags(wc(policy=p, variant="base", benchmark="demo_eval"))
    assert flags_ == (
        f"--sampled-executions results/eval/{p}/base/demo_eval/sampled/executions.jsonl "
        "--pass-at-k 1 5 10"
    )


def test_pair_runs_of_the_hack_report(iterative):
    assert iterative.pair_runs() == [
        ("demo-codeqwen", "", "demo-codeqwen round 1"),
        ("demo-codeqwen", "/paper/dpo/r2", "demo-codeqwen round 2"),
        ("demo-codeqwen", "/paper/dpo/r3", "demo-codeqwen round 3"),
        ("demo-codeqwen", "/max_min/dpo/r1", "demo-codeqwen max_min round 1"),
        ("demo-codeqwen", "/max_min/dpo/r2", "demo-codeqwen max_min round 2"),
        ("demo-codeqwen", "/max_min/dpo/r3", "demo-codeqwen max_min round 3"),
    ]
    assert iterative.hack_report_labels().startswith("'demo-codeqwen round 1' ")
    assert (
        iterative.hack_report_stats()[1]
        == "results/iterative/pairs/demo-codeqwen/paper/dpo/r2/stats.json"
    )
    assert iterative.rounds_shown and not workflow().rounds_shown


def test_table_scores_cover_every_variant_and_benchmark(demo):
    scores = demo.table_scores()
    assert len(scores) == 4 + 4 + 3  # base, rft, own DPO and Table 2's, per model
    assert scores[0] == "results/eval/demo-codeqwen/base/demo_eval/scores.json"


# -- resources -----------------------------------------------------------------------------------
def test_demo_and_hub_models_ask_for_different_resources(demo, paper):
    tiny, big = wc(policy="demo-codeqwen"), wc(policy="codeqwen")
    assert demo.model_mem_mb(tiny, attempt=1) == 4000
    assert paper.model_mem_mb(big, attempt=1) == 64000
    assert paper.model_mem_mb(big, attempt=2) == 128000  # a retry asks for more
    assert demo.analysis_gpus(tiny) == 0 and paper.analysis_gpus(big) == 1
    assert demo.generation_resources("sampling")["gpu"](tiny) == 0
    assert paper.generation_resources("sampling")["gpu"](big) == 1
    assert demo.training_gpus(tiny) == 0
    assert paper.training_gpus(big) == paper.config["training"]["num_processes"] == 8
    assert paper.training_mem_mb(big, attempt=2) == 64000 * 8 * 2
    assert demo.training_mem_mb(tiny, attempt=3) == 4000 * 3
    assert paper.training_cpus(big) == 8 * paper.config["training"]["threads"]


def test_vllm_asks_for_its_tensor_parallel_gpus(paper):
    w = workflow(PAPER, {"sampling": {"backend": "vllm", "vllm": {"tensor_parallel_size": 2}}})
    big = wc(policy="codeqwen")
    assert w.generation_resources("sampling")["gpu"](big) == 2
    assert w.generation_resources("eval")["gpu"](big) == 1  # eval.backend hf
    assert w.generation_resources("eval")["mem_mb"](big, attempt=1) == 64000


# -- the cluster profile -------------------------------------------------------------------------
def test_the_profile_placeholder_message():
    assert placeholder_error(["mem_mb=4000", "slurm_account=abc"], {"r": {"x": "1"}}) is None
    one = placeholder_error(["slurm_partition=EDIT_ME"], {})
    assert one == (
        "profile error: default-resources: slurm_partition=EDIT_ME is a placeholder (lines "
        "marked EDIT in profiles/slurm/config.yaml): set your site's value (sinfo -s; sacctmgr "
        "show assoc user=$USER) or delete the line"
    )
    more = placeholder_error([], {"train_dpo": {"slurm_partition": "EDIT_ME_GPU", "nodes": "1"},
                                  "train_rft": {"slurm_partition": "EDIT_ME_GPU"}})  # fmt: skip
    assert more.startswith("profile error: set-resources: train_dpo: slurm_partition=EDIT_ME_GPU")
    assert more.endswith("; 1 more like it")


def test_the_shipped_slurm_profile_is_caught_until_edited():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    defaults = [f"{k}={v}" for k, v in profile["default-resources"].items()]
    per_rule = {rule: {k: str(v) for k, v in values.items()}
                for rule, values in profile["set-resources"].items()}  # fmt: skip
    message = placeholder_error(defaults, per_rule)
    assert message.startswith("profile error: default-resources: slurm_partition=EDIT_ME ")
    edited = [d.replace("EDIT_ME", "gpu") for d in defaults]
    still = placeholder_error(edited, per_rule)
    assert still.startswith("profile error: set-resources: ")
