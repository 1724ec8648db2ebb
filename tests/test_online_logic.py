"""The online-RL arms (``grpo``) without running them: their config check
(codedpo.workflow.online.check_grpo), and what the GRPO, budget, Table 3 and report jobs get from
codedpo.workflow.jobs.Workflow, on the shipped configs (configs/online.yaml over config.yaml,
configs/paper_online.yaml over configs/paper.yaml) run through the real config check; and one dry
run of the online demo's plan."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from workflow_helpers import copy_workflow, merge, planned_jobs

from codedpo.workflow.config import ConfigError, Layer, check, load_schema
from codedpo.workflow.jobs import Workflow

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "schemas/config.schema.yaml")


def load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


DEMO = load("config.yaml")
ONLINE = load("configs/online.yaml")
ITERATIVE = load("configs/iterative.yaml")
PAPER = load("configs/paper.yaml")
PAPER_ONLINE = load("configs/paper_online.yaml")
P = "demo-codeqwen"
OTHER = "demo-deepseek-coder"
ONE_ARM = {"grpo": {"arms": {"pass_all": {}}}}


def workflow(*overrides: dict) -> Workflow:
    """config.yaml merged with ``overrides``, checked as the Snakefile checks it."""
    config = DEMO
    for override in overrides:
        config = merge(config, override)
    config = copy.deepcopy(config)
    return Workflow(config, check(config, SCHEMA, [Layer("config.yaml", config)], root=REPO))


def wc(**wildcards: str) -> SimpleNamespace:
    return SimpleNamespace(**wildcards)


def flag_values(text: str) -> dict[str, str]:
    """``--name value`` pairs of a flag string (every flag here takes one value)."""
    tokens = shlex.split(text)
    assert len(tokens) % 2 == 0 and all(t.startswith("--") for t in tokens[::2]), tokens
    return dict(zip(tokens[::2], tokens[1::2], strict=True))


@pytest.fixture(scope="module")
def online() -> Workflow:
    return workflow(ONLINE)


@pytest.fixture(scope="module")
def iterative() -> Workflow:
    """configs/iterative.yaml (3 rounds, arms paper and max_min) with one GRPO arm."""
    return workflow(ITERATIVE, ONE_ARM)


@pytest.fixture(scope="module")
def paper() -> Workflow:
    return workflow(PAPER, PAPER_ONLINE)


# -- the online demo config ----------------------------------------------------------------------
def test_the_online_demo_has_two_arms_evaluated_after_dpo(online):
    assert list(online.grpo) == ["pass_all", "rule"]
    assert [(a.recipe, a.recipe_path) for a in online.grpo.values()] == [
        ("grpo", "configs/recipes/grpo.yaml"), ("grpo-rule", "configs/recipes/grpo-rule.yaml"),
    ]  # fmt: skip
    assert online.grpo["rule"].variant == "grpo-rule"
    assert online.eval_variants(P) == ["base", "rft", f"dpo-{P}", "grpo-pass_all", "grpo-rule"]
    assert online.grpo_shown and not workflow().grpo_shown
    assert online.grpo_checkpoints() == [
        f"results/online/checkpoints/{P}/grpo-pass_all",
        f"results/online/checkpoints/{P}/grpo-rule",
    ]  # fmt: skip


def test_the_variant_wildcard_accepts_the_configs_runs_only(online, iterative):
    def accepts(w: Workflow, variant: str) -> bool:
        return re.fullmatch(w.variant_pattern, variant) is not None

    for variant in ("base", "rft", "grpo-pass_all", "grpo-rule", f"dpo-{P}"):
        assert accepts(online, variant), variant
    for variant in ("grpo-other", "grpo-pass_al", "grpo-pass_allx", "grpo-", f"dpo-{OTHER}",
                    f"max_min/dpo/r2/dpo-{P}", "paper/dpo/r2/grpo-pass_all"):  # fmt: skip
        assert not accepts(online, variant), variant
    # the iterative config has the max_min arm and rounds 2 and 3; only one GRPO arm
    for variant in (f"paper/dpo/r2/dpo-{P}", f"max_min/dpo/r2/dpo-{P}", "grpo-pass_all"):
        assert accepts(iterative, variant), variant
    assert not accepts(iterative, "grpo-rule")
    assert not accepts(workflow(), "grpo-pass_all")  # no arms, no GRPO variant


def test_the_variant_wildcard_rejects_rounds_the_config_does_not_run(online):
    assert re.fullmatch(online.variant_pattern, f"paper/dpo/r2/dpo-{P}") is None


def test_grpo_arm_of_wildcards_and_variants(online):
    assert online.grpo_arm(wc(grpo_arm="rule")) is online.grpo["rule"]
    assert online.grpo_arm(wc(policy=P, variant="grpo-pass_all")) is online.grpo["pass_all"]
    assert online.grpo_arm(wc(policy=P, variant="grpo-other")) is None
    assert online.grpo_arm(wc(policy=P, variant=f"dpo-{P}")) is None
    assert online.grpo_arm(wc(policy=P, variant="rft")) is None
    assert online.variant_method(wc(policy=P, variant="grpo-rule")) == "grpo"
    assert online.grpo_recipe(wc(grpo_arm="rule")) == "configs/recipes/grpo-rule.yaml"


def test_grpo_flags_of_the_online_demo(online):
    text = online.grpo_flags(wc(policy=P, grpo_arm="pass_all"))
    values = flag_values(text)
    # the demo's overrides, all of which differ from the recipe (save_steps is a float field in
    # TrainingArguments: 2 is written 2.0); then the workflow's own flags
    assert list(values) == [
        "--activation_checkpointing", "--effective_batch_size", "--learning_rate",
        "--max_completion_length", "--save_steps", "--execution", "--expected_file",
        "--responses_per_problem", "--use_vllm",
    ]  # fmt: skip
    assert values["--activation_checkpointing"] == "false"
    assert values["--effective_batch_size"] == "64"
    assert values["--learning_rate"] == "0.0001"
    assert values["--max_completion_length"] == "160"
    assert values["--save_steps"] == "2.0"
    assert values["--expected_file"] == "results/online/problems/train.expected.json"
    assert values["--responses_per_problem"] == "8"  # 1 round of sampling.n 8
    assert values["--use_vllm"] == "false"
    execution = online.config["execution"]
    expected = {k: v for k, v in execution.items() if k not in ("workers", "apptainer_image")}
    expected["runtime"] = "resources/runtime/judge"
    assert json.loads(values["--execution"]) == expected
    # the rule arm: the same overrides over its own recipe
    assert online.grpo_flags(wc(policy=P, grpo_arm="rule")) == text


def test_overrides_equal_to_the_recipe_are_no_flags():
    w = workflow(ONLINE, {"grpo": {"overrides": {"num_generations": 8, "beta": 0.0},
                                   "arms": {"rule": {"overrides": {"beta": 0.001}}}}})  # fmt: skip
    pass_all = flag_values(w.grpo_flags(wc(policy=P, grpo_arm="pass_all")))
    assert "--num_generations" not in pass_all and "--beta" not in pass_all
    assert flag_values(w.grpo_flags(wc(policy=P, grpo_arm="rule")))["--beta"] == "0.001"


def test_the_execution_settings_follow_the_config():
    def execution_of(w: Workflow) -> dict:
        return json.loads(flag_values(w.grpo_flags(wc(policy=P, grpo_arm="pass_all")))[
            "--execution"])  # fmt: skip

    stdlib = execution_of(workflow(ONLINE, {"execution": {"runtime": None}}))
    assert stdlib["runtime"] == "stdlib"
    # envs/sandbox.def stands in for an image: the check wants a file that exists
    apptainer = workflow(
        ONLINE, {"execution": {"backend": "apptainer", "apptainer_image": "envs/sandbox.def"}}
    )
    settings = execution_of(apptainer)
    assert settings["backend"] == "apptainer" and settings["apptainer_image"] == "envs/sandbox.def"
    assert "apptainer_image" not in execution_of(
        workflow(ONLINE, {"execution": {"apptainer_image": "envs/sandbox.def"}})
    )
    changed = execution_of(workflow(ONLINE, {"execution": {"test_seconds": 5.0, "workers": 7}}))
    assert changed["test_seconds"] == 5.0 and "workers" not in changed


@pytest.mark.parametrize(
    "override, flag, note",
    [
        ({"grpo": {"budget_responses": 500}}, "--max_responses 500",
         "GRPO's budget: 500 generated responses per run."),
        ({"rounds": 3, "grpo": {"budget_rounds": None}}, "--responses_per_problem 24",
         "GRPO's budget: 24 generated responses per training problem, matched to DPO with 3 "
         "round(s) of 8 samples per problem."),
        ({"grpo": {"budget_rounds": 2}}, "--responses_per_problem 16",
         "GRPO's budget: 16 generated responses per training problem, matched to DPO with 2 "
         "round(s) of 8 samples per problem."),
        ({"sampling": {"n": 4}}, "--responses_per_problem 4",
         "GRPO's budget: 4 generated responses per training problem, matched to DPO with 1 "
         "round(s) of 4 samples per problem."),
    ],
)  # fmt: skip
def test_the_budget_flag_and_note(override, flag, note):
    w = workflow(ONLINE, override)
    text = w.grpo_flags(wc(policy=P, grpo_arm="pass_all"))
    assert f" {flag} " in text
    other = "--responses_per_problem" if flag.startswith("--max") else "--max_responses"
    assert other not in text
    assert shlex.split(w.grpo_budget_note()) == [note]
    assert workflow().grpo_budget_note() == ""  # no arms: no note


# -- what each variant cost ----------------------------------------------------------------------
def shards(results: str, kind: str, where: str, shards: int = 2) -> list[str]:
    return [f"{results}/{kind}/{where}/shard{s}.jsonl" for s in range(shards)]


def budget(
    rounds_at: list[str], checkpoints: list[str], results: str = "results/iterative"
) -> dict[str, list[str]]:
    """What budget_inputs gives: the sample and execution shards under each of ``rounds_at``."""
    return {
        "samples": [s for where in rounds_at for s in shards(results, "samples", where)],
        "executions": [s for where in rounds_at for s in shards(results, "executions", where)],
        "checkpoints": checkpoints,
    }


def test_budget_inputs_of_each_variant(iterative):
    def inputs(variant: str) -> dict[str, list[str]]:
        return iterative.budget_inputs(wc(policy=P, variant=variant))

    ckpt = f"results/iterative/checkpoints/{P}"
    assert inputs("base") == {"samples": [], "executions": [], "checkpoints": []}
    assert inputs("rft") == budget([P], [f"{ckpt}/rft"])
    assert inputs(f"dpo-{P}") == budget([P], [f"{ckpt}/dpo-{P}"])
    assert inputs(f"paper/dpo/r3/dpo-{P}") == budget(
        [P, f"{P}/paper/dpo/r2", f"{P}/paper/dpo/r3"],
        [f"{ckpt}/dpo-{P}", f"{ckpt}/paper/dpo/r2/dpo-{P}", f"{ckpt}/paper/dpo/r3/dpo-{P}"],
    )
    # round 1's samples are every arm's; the arm's round-1 DPO run is its own
    assert inputs(f"max_min/dpo/r2/dpo-{P}") == budget(
        [P, f"{P}/max_min/dpo/r2"],
        [f"{ckpt}/max_min/dpo/r1/dpo-{P}", f"{ckpt}/max_min/dpo/r2/dpo-{P}"],
    )
    assert inputs("grpo-pass_all") == {
        "samples": [], "executions": [], "checkpoints": [f"{ckpt}/grpo-pass_all"],
    }  # fmt: skip


def test_budget_of_a_table_2_run_is_the_other_models_samples():
    demo = workflow()
    assert demo.budget_inputs(wc(policy=P, variant=f"dpo-{OTHER}")) == budget(
        [OTHER], [f"results/checkpoints/{P}/dpo-{OTHER}"], "results"
    )
    assert demo.budget_flags(wc(policy=P, variant=f"dpo-{OTHER}")) == (
        f"--variant dpo --pairs-from {OTHER}"
    )


def test_budget_flags_name_the_variant(iterative, online):
    for variant, expected in [
        ("base", "--variant base"),
        ("rft", "--variant rft"),
        (f"dpo-{P}", f"--variant dpo --pairs-from {P}"),
        (f"paper/dpo/r3/dpo-{P}", f"--variant dpo --pairs-from {P} --round 3"),
        (f"max_min/dpo/r2/dpo-{P}", f"--variant dpo --pairs-from {P} --round 2 --arm max_min"),
        ("grpo-pass_all", "--variant grpo --arm pass_all --recipe grpo"),
    ]:  # fmt: skip
        assert iterative.budget_flags(wc(policy=P, variant=variant)) == expected, variant
    assert online.budget_flags(wc(policy=P, variant="grpo-rule")) == (
        "--variant grpo --arm rule --recipe grpo-rule"
    )


def test_score_flags_of_a_grpo_variant(online):
    def score(w: Workflow, variant: str) -> str:
        return w.score_flags(wc(policy=P, variant=variant, benchmark="demo_eval"))

    assert score(online, "grpo-pass_all") == "--arm pass_all --recipe grpo"
    assert score(online, "grpo-rule") == "--arm rule --recipe grpo-rule"
    assert score(online, f"dpo-{P}") == "" and score(online, "base") == ""
    sampled = workflow(ONLINE, {"eval": {"samples_per_problem": 10}})
    assert score(sampled, "grpo-rule") == (
        "--arm rule --recipe grpo-rule --sampled-executions "
        f"results/online/eval/{P}/grpo-rule/demo_eval/sampled/executions.jsonl --pass-at-k 1 5 10"
    )


# -- resources -----------------------------------------------------------------------------------
def test_a_demo_grpo_job_asks_for_its_sandboxes_too(online):
    tiny = wc(policy=P, grpo_arm="pass_all")
    training, execution = online.config["training"], online.config["execution"]
    processes = training["num_processes"]
    assert online.grpo_cpus(tiny) == (
        training["threads"] * processes + execution["workers"] * processes
    ) == 1 + 2  # fmt: skip
    assert online.grpo_cpus(tiny) > online.training_cpus(tiny)
    assert online.training_gpus(tiny) == 0
    w = workflow(ONLINE, {"execution": {"workers": 5, "memory_mb": 2048}})
    assert w.grpo_cpus(tiny) == 1 + 5


def test_a_paper_grpo_job_asks_for_eight_gpus_and_their_sandboxes(paper):
    big = wc(policy="codeqwen", grpo_arm="pass_all")
    assert list(paper.grpo) == ["pass_all", "rule"]
    assert paper.training_gpus(big) == 8
    assert paper.grpo_cpus(big) == 8 * 4 + 8 * 8
    text = paper.grpo_flags(big)
    # the recipes as shipped: no overrides; transformers' generation
    assert text.startswith("--execution ") and text.endswith(
        "--expected_file results/paper_online/problems/train.expected.json "
        "--responses_per_problem 8 --use_vllm false"
    )  # fmt: skip
    assert (
        json.loads(flag_values(text)["--execution"])["test_seconds"]
        == (paper.config["execution"]["test_seconds"])
    )
    assert paper.eval_variants("codeqwen")[-2:] == ["grpo-pass_all", "grpo-rule"]


def test_vllm_rollouts_follow_sampling_backend():
    vllm = {"sampling": {"backend": "vllm"}}
    big = wc(policy="codeqwen", grpo_arm="rule")
    assert (
        workflow(PAPER, PAPER_ONLINE, vllm)
        .grpo_flags(big)
        .endswith("--use_vllm true --vllm_mode colocate --vllm_tensor_parallel_size 1")
    )
    two = {"sampling": {"backend": "vllm", "vllm": {"tensor_parallel_size": 2}}}
    assert (
        workflow(PAPER, PAPER_ONLINE, two).grpo_flags(big).endswith("--vllm_tensor_parallel_size 2")
    )
    # eval.backend is not GRPO's
    eval_only = workflow(PAPER, PAPER_ONLINE, {"eval": {"backend": "vllm"}})
    assert eval_only.grpo_flags(big).endswith("--use_vllm false")
    # the demo's too: on the CPU through vLLM's CPU build (tests/test_vllm.py)
    demo = workflow(ONLINE, vllm).grpo_flags(wc(policy=P, grpo_arm="rule"))
    assert demo.endswith("--use_vllm true --vllm_mode colocate --vllm_tensor_parallel_size 1")
    assert workflow(ONLINE).grpo_flags(wc(policy=P, grpo_arm="rule")).endswith("--use_vllm false")


# -- config errors -------------------------------------------------------------------------------
def check_online(*overrides: dict) -> dict:
    """config.yaml, configs/online.yaml (o1.yaml) and ``overrides`` (o2.yaml, ...), checked."""
    config = DEMO
    layers = [Layer("config.yaml", DEMO)]
    for i, override in enumerate((ONLINE, *overrides), start=1):
        config = merge(config, override)
        layers.append(Layer(f"o{i}.yaml", override))
    config = copy.deepcopy(config)
    check(config, SCHEMA, layers, root=REPO)
    return config


def error_of(*overrides: dict) -> str:
    with pytest.raises(ConfigError) as err:
        check_online(*overrides)
    message = str(err.value)
    assert len(message.splitlines()) <= 2, message
    return message


def arm_overrides(**overrides) -> dict:
    return {"grpo": {"arms": {"pass_all": {"overrides": overrides}}}}


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"grpo": {"overrides": {"max_steps": 10}}},
         "grpo.overrides.max_steps: set by the workflow: use grpo.budget_rounds or "
         "grpo.budget_responses"),
        (arm_overrides(use_vllm=True),
         "grpo.arms.pass_all.overrides.use_vllm: set by the workflow: use sampling.backend"),
        ({"grpo": {"overrides": {"max_responses": 100}}},
         "grpo.overrides.max_responses: set by the workflow: use grpo.budget_responses"),
        (arm_overrides(expected_file="x.json"),
         "grpo.arms.pass_all.overrides.expected_file: set by the workflow: use the workflow"),
        ({"grpo": {"overrides": {"threads": 2}}},
         "grpo.overrides.threads: set by the workflow: use training.threads"),
        ({"grpo": {"overrides": {"num_generation": 4}}},
         "grpo.overrides.num_generation: unknown key (did you mean 'num_generations'?)"),
        (arm_overrides(num_generation=4),
         "grpo.arms.pass_all.overrides.num_generation: unknown key "
         "(did you mean 'num_generations'?)"),
        ({"grpo": {"arms": {"pass_all": {"recipee": "x.yaml"}}}},
         "grpo.arms.pass_all.recipee: unknown key (did you mean 'recipe'?)"),
        ({"grpo": {"budget_round": 2}},
         "grpo.budget_round: unknown key (did you mean 'budget_rounds'?)"),
        ({"grpo": {"arms": {"x": {"recipe": "configs/recipes/dpo.yaml"}}}},
         "grpo.arms.x.recipe: configs/recipes/dpo.yaml is a 'dpo' recipe"),
        ({"grpo": {"arms": {"x": {"recipe": "configs/recipes/nope.yaml"}}}},
         "grpo.arms.x.recipe: configs/recipes/nope.yaml: file not found"),
        ({"grpo": {"arms": {"a b": {}}}},
         "grpo.arms.a b: a GRPO arm's name is letters, digits, '_', '.', '-'"),
        ({"execution": {"fast_check": True}, **arm_overrides(rewards=["fraction"])},
         "execution.fast_check: GRPO arm 'pass_all' is rewarded by the fraction of tests "
         "passed, which needs every test run: set fast_check false"),
        ({"grpo": {"overrides": {"beta": -0.1}}}, "grpo.overrides.beta: -0.1 must be >= 0"),
        ({"grpo": {"overrides": {"num_generations": 1}}},
         "grpo.overrides.num_generations: 1 must be >= 2"),
        ({"grpo": {"overrides": {"rewards": ["pass_al"]}}},
         "grpo.overrides.rewards: 'pass_al' is not one of pass_all, fraction, rule "
         "(did you mean 'pass_all'?)"),
        ({"grpo": {"budget_rounds": 0}}, "grpo.budget_rounds: 0 must be >= 1"),
    ],
)  # fmt: skip
def test_grpo_config_errors_name_the_file_and_the_key(override, expected):
    message = error_of(override)
    assert message.startswith(f"o2.yaml: {expected}"), message


def test_an_unknown_key_far_from_any_lists_the_valid_ones():
    message = error_of({"grpo": {"overrides": {"zzzqqq": 1}}})
    first, valid = message.splitlines()
    assert first == "o2.yaml: grpo.overrides.zzzqqq: unknown key"
    assert valid.startswith("  valid keys: ") and " num_generations, " in valid


def test_a_batch_of_partial_groups_is_an_error():
    # 60 completions per step: not whole per-device batches of 8, nor whole groups of 8
    message = error_of({"grpo": {"overrides": {"effective_batch_size": 60}}})
    assert "effective_batch_size: 60 is not a multiple of per_device_train_batch_size 8" in (
        message
    )
    groups = error_of(arm_overrides(per_device_train_batch_size=4, effective_batch_size=60))
    assert groups.endswith(
        "effective_batch_size: 60 completions per step is not a multiple of num_generations 8: "
        "a step holds whole groups"
    )
    check_online(arm_overrides(per_device_train_batch_size=4, effective_batch_size=64))


@pytest.mark.parametrize("extra", [{}, {"per_device_train_batch_size": 4}])
def test_a_shared_batch_error_names_grpo_overrides_and_its_file(extra):
    message = error_of({"grpo": {"overrides": {"effective_batch_size": 60, **extra}}})
    assert message.startswith("o2.yaml: grpo.overrides.effective_batch_size: 60 "), message


def test_an_arms_group_error_names_the_file_that_set_it():
    message = error_of(arm_overrides(per_device_train_batch_size=4, effective_batch_size=60))
    assert message.startswith(
        "o2.yaml: grpo.arms.pass_all.overrides.effective_batch_size: 60 completions per step"
    ), message


def test_fast_check_is_fine_without_a_fraction_reward():
    config = check_online({"execution": {"fast_check": True}})
    assert config["execution"]["fast_check"] is True
    assert list(config["grpo"]["arms"]) == ["pass_all", "rule"]  # pass_all and rule rewards
    # the fraction reward is fine where every test runs
    check_online(arm_overrides(rewards=["fraction"]))


def test_a_null_arm_removes_it_and_beta_zero_is_grpos_default():
    config = check_online({"grpo": {"arms": {"rule": None}}})
    assert list(config["grpo"]["arms"]) == ["pass_all"]
    w = workflow(ONLINE, {"grpo": {"arms": {"rule": None}}})
    assert w.eval_variants(P)[-1] == "grpo-pass_all" and "grpo-rule" not in w.eval_variants(P)
    assert check_online({"grpo": {"overrides": {"beta": 0.0}}})["grpo"]["overrides"]["beta"] == 0
    # DPO's beta must stay positive
    assert error_of({"dpo": {"overrides": {"beta": 0.0}}}).startswith(
        "o2.yaml: dpo.overrides.beta: 0.0 must be > 0"
    )
    no_arms = check_online({"grpo": {"arms": None}})
    assert not no_arms["grpo"]["arms"]


def test_overrides_are_typed_and_merged_per_arm():
    config = check_online(
        {"grpo": {"overrides": {"learning_rate": "2e-5"}}}, arm_overrides(num_generations=4)
    )
    assert config["grpo"]["overrides"]["learning_rate"] == 2e-5  # YAML's string, a float
    w = workflow(ONLINE, {"grpo": {"overrides": {"learning_rate": "2e-5"}}},
                 arm_overrides(num_generations=4, rewards="fraction"))  # fmt: skip
    assert w.grpo["pass_all"].overrides["num_generations"] == 4
    assert "num_generations" not in w.grpo["rule"].overrides
    assert w.grpo["rule"].overrides["learning_rate"] == 2e-5
    rewards = json.loads(shlex.split(w.grpo_rewards())[0])
    assert rewards == {f"{P} grpo pass_all": ["fraction"], f"{P} grpo rule": ["rule"]}


# -- tables and reports --------------------------------------------------------------------------
def test_hack_report_and_curve_labels(online):
    assert online.hack_report_labels().endswith(
        f"'{P} round 1' '{P} grpo pass_all' '{P} grpo rule'"
    )
    assert shlex.split(online.hack_report_labels()) == [
        f"{P} round 1", f"{P} grpo pass_all", f"{P} grpo rule",
    ]  # fmt: skip
    assert shlex.split(online.grpo_labels()) == [f"{P} grpo pass_all", f"{P} grpo rule"]
    assert json.loads(shlex.split(online.grpo_rewards())[0]) == {
        f"{P} grpo pass_all": ["pass_all"], f"{P} grpo rule": ["rule"],
    }  # fmt: skip
    # without arms, only the pairs
    assert "grpo" not in workflow(ITERATIVE).hack_report_labels()


def test_table3_reads_every_variants_budget(online, iterative):
    assert online.table3_budgets() == [
        f"results/online/budget/{P}/{v}.json"
        for v in ("base", "rft", f"dpo-{P}", "grpo-pass_all", "grpo-rule")
    ]
    budgets = iterative.table3_budgets()
    assert len(budgets) == 3 + 5 + 1  # base, rft, the paper's DPO; 5 more runs; one GRPO arm
    assert f"results/iterative/budget/{P}/max_min/dpo/r3/dpo-{P}.json" in budgets
    assert budgets[-1] == f"results/iterative/budget/{P}/grpo-pass_all.json"
    assert online.table_scores()[-1] == f"results/online/eval/{P}/grpo-rule/demo_eval/scores.json"
    assert online.bootstrap_flags() == (
        "--bootstrap-resamples 10000 --bootstrap-seed 0 --confidence 0.95"
    )


# -- the plan ------------------------------------------------------------------------------------
@pytest.mark.workflow
def test_the_online_demo_plans_two_grpo_runs_and_table_3(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    jobs = planned_jobs(workdir, "--configfile", "configs/online.yaml")
    assert jobs == {
        # one policy's demo: its model, problems, samples, pairs, DPO and RFT
        "all": 1, "build_demo_model": 1, "build_runtime": 1, "prepare_benchmark": 1,
        "prepare_train_source": 1, "filter_train_problems": 1, "compute_expected": 2,
        "sample_responses": 2, "execute_samples": 2, "build_pairs": 1, "train_dpo": 1,
        "train_rft": 1, "analyze_implicit_reward": 1,
        # 5 variants evaluated: base, rft, dpo, grpo-pass_all, grpo-rule
        "generate_eval": 5, "execute_eval": 5, "score_eval": 5,
        "make_tables": 1, "plot_pass_at_1": 1, "plot_pass_histogram": 1, "plot_verdicts": 1,
        "plot_training_curves": 1,
        # online RL: the two arms, a budget per variant, Table 3, the curves, the hack report
        "train_grpo": 2, "count_budget": 5, "make_table3": 1, "plot_grpo_curves": 1,
        "hack_report": 1,
    }  # fmt: skip
