"""The online-RL arms of a config (``grpo``): GRPO runs beside DPO and RFT, on the same policies,
training problems and executor, at a stated budget in generated responses.

Each entry of ``grpo.arms`` is one GRPO run per policy, trained from the original model on the
training pool (``results/problems/train.jsonl``) with its recipe (``configs/recipes/grpo*.yaml``)
and ``grpo.overrides`` merged with the arm's own, checked at the dry run against TRL's
``GRPOConfig`` as DPO's are (:func:`check_grpo`). Its checkpoint is
``results/checkpoints/{policy}/grpo-{arm}``, an eval variant like ``dpo-{policy}``, evaluated by the
same rules. What the run may not set itself, the workflow sets (:data:`SET_BY_WORKFLOW`): the
executor's settings are the config's ``execution``, so a GRPO reward is the verdict an execution
job would give; the budget is ``grpo.budget_responses`` or DPO's with ``grpo.budget_rounds``
rounds (``sampling.n`` responses per training problem per round); vLLM follows
``sampling.backend`` (colocate mode, on GPUs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codedpo.workflow import messages
from codedpo.workflow import recipes as training
from codedpo.workflow.chains import recipe_name

# Fields of a GRPO run the workflow sets on the command line (rules/train.smk, train_grpo).
SET_BY_WORKFLOW = {
    "max_steps": "grpo.budget_rounds or grpo.budget_responses",
    "max_responses": "grpo.budget_responses",
    "responses_per_problem": "grpo.budget_rounds",
    "execution": "the config's execution",
    "expected_file": "the workflow (results/problems/train.expected.json)",
    "reward_workers": "the job's CPUs (execution.workers per training process)",
    "use_vllm": "sampling.backend",
    "vllm_mode": "sampling.backend (colocate)",
    "vllm_tensor_parallel_size": "sampling.vllm.tensor_parallel_size",
}
# The training problems' expected outputs (rule compute_expected), as execute_samples reads them.
EXPECTED = "problems/train.expected.json"  # below the experiment's results folder
# The execution settings a GRPO run is given (the rest schedule work: workers).
EXECUTION_KEYS = ("backend", "apptainer_image", "memory_mb", "test_seconds", "min_test_seconds",
                  "time_factor", "sample_seconds", "fast_check", "stack_mb")  # fmt: skip


@dataclass(frozen=True)
class GrpoArm:
    """One GRPO run per policy: its name, its recipe and the overrides merged over it."""

    name: str
    recipe: str  # the recipe's name: its file's stem
    recipe_path: str
    overrides: dict = field(hash=False)

    @property
    def variant(self) -> str:
        """Its eval variant and checkpoint name: ``grpo-{name}``."""
        return f"grpo-{self.name}"


def grpo_arms(config: dict) -> list[GrpoArm]:
    """The config's GRPO arms, sorted by name."""
    grpo = config["grpo"]
    common = dict(grpo.get("overrides") or {})
    out = []
    for name in sorted(grpo.get("arms") or {}):
        settings = grpo["arms"][name]
        path = settings["recipe"]
        out.append(GrpoArm(name, recipe_name(path), path,
                           {**common, **(settings.get("overrides") or {})}))  # fmt: skip
    return out


def check_grpo(config: dict, layers: Sequence, fields_for: Callable[[str], dict], root: Path,
               ) -> dict[str, dict]:  # fmt: skip
    """Arm names, recipes, overrides and batch sizes of ``grpo``; returns each recipe by path,
    typed. Raises :class:`codedpo.workflow.messages.ConfigError` naming the key."""
    grpo = config["grpo"]
    if not grpo["arms"]:
        return {}
    fields = fields_for("grpo")
    for key in (["grpo", "overrides"], *(["grpo", "arms", a, "overrides"] for a in grpo["arms"])):
        overrides = messages._get(config, key)[1] or {}
        for name in overrides:
            if name in SET_BY_WORKFLOW:
                raise messages.error(layers, [*key, name], f"set by the workflow: use "
                                f"{SET_BY_WORKFLOW[name]}")  # fmt: skip
        training._check_overrides(overrides, fields, layers, key, "grpo")
    recipes: dict[str, dict] = {}
    for arm in grpo_arms(config):
        key = ["grpo", "arms", arm.name]
        if not messages.NAME.match(arm.name):
            raise messages.error(layers, key, "a GRPO arm's name is letters, digits, '_', '.', '-' "
                            "(it names directories)")  # fmt: skip
        if arm.recipe_path not in recipes:
            recipes[arm.recipe_path] = training._check_recipe(
                arm.recipe_path, "grpo", fields, layers, [*key, "recipe"], root
            )
        merged = {**recipes[arm.recipe_path], **arm.overrides}
        # the key that sets effective_batch_size: the arm's overrides, grpo.overrides, or the
        # recipe (then the error is labelled with the recipe file)
        own = messages._get(config, [*key, "overrides"])[1] or {}
        where = [*key, "overrides"] if "effective_batch_size" in own else ["grpo", "overrides"]
        training._check_batch(config, where, merged, fields, layers, arm.recipe_path)
        generations = merged.get("num_generations", fields["num_generations"].get("default"))
        effective = merged.get("effective_batch_size")
        if generations and effective and effective % generations:
            path = [*where, "effective_batch_size"]
            set_here = messages._get(config, path)[0]
            raise messages.error(layers, path,
                                 f"{effective} completions per step is not a multiple of "
                                 f"num_generations {generations}: a step holds whole groups",
                                 label=messages.source_of(path, layers) if set_here
                                 else arm.recipe_path)  # fmt: skip
        if config["execution"]["fast_check"] and "fraction" in merged.get("rewards", []):
            raise messages.error(layers, ["execution", "fast_check"],
                            f"GRPO arm {arm.name!r} is rewarded by the fraction of tests passed, "
                            "which needs every test run: set fast_check false")  # fmt: skip
    return recipes


def execution_settings(execution: dict, runtime: str) -> str:
    """The ``--execution`` JSON of a GRPO run: the config's execution settings (``runtime``:
    the judge runtime's directory, or ``stdlib``), keys sorted (a param: a change reruns)."""
    settings = {k: execution[k] for k in EXECUTION_KEYS}
    if settings["backend"] != "apptainer":
        settings.pop("apptainer_image")
    settings["runtime"] = runtime
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def budget_flag(config: dict) -> str:
    """The budget of every GRPO run: ``--max_responses N`` (``grpo.budget_responses``), else
    ``--responses_per_problem`` (DPO's with ``grpo.budget_rounds`` rounds, default ``rounds``:
    ``sampling.n`` responses per training problem per round)."""
    grpo = config["grpo"]
    if grpo["budget_responses"] is not None:
        return f"--max_responses {int(grpo['budget_responses'])}"
    rounds = grpo["budget_rounds"] or config["rounds"]
    return f"--responses_per_problem {int(config['sampling']['n']) * int(rounds)}"


def budget_note(config: dict) -> str:
    """What Table 3 says of the GRPO budget."""
    grpo = config["grpo"]
    if grpo["budget_responses"] is not None:
        return f"GRPO's budget: {int(grpo['budget_responses'])} generated responses per run."
    rounds = grpo["budget_rounds"] or config["rounds"]
    n = int(config["sampling"]["n"])
    return (f"GRPO's budget: {n * int(rounds)} generated responses per training problem, matched "
            f"to DPO with {rounds} round(s) of {n} samples per problem.")  # fmt: skip


def vllm_flags(backend: str, vllm: dict) -> str:
    """vLLM for GRPO's rollouts where sampling uses it (colocate mode: the trainer's GPUs, or on
    the CPU vLLM's CPU build: codedpo.training.grpo.check_vllm_on_cpu); transformers otherwise."""
    if backend != "vllm":
        return "--use_vllm false"
    return (f"--use_vllm true --vllm_mode colocate "
            f"--vllm_tensor_parallel_size {int(vllm['tensor_parallel_size'])}")  # fmt: skip
