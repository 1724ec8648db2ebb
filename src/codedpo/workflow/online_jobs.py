"""The GRPO arms' part of :class:`codedpo.workflow.jobs.Workflow`: the ``{variant}`` wildcard,
each GRPO job's flags and resources, the budget of every evaluated variant and Table 3's inputs
(the arms themselves and their checks are :mod:`codedpo.workflow.online`).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from codedpo.workflow import flags, online, resources
from codedpo.workflow.runs import variant_chain

Wildcards = Any  # Snakemake's wildcards object (any object with the wildcards as attributes)


class OnlineJobs:
    """Methods of :class:`~codedpo.workflow.jobs.Workflow` for the GRPO arms and the budgets;
    they read the workflow's ``config``, ``checked``, ``results``, ``runs``, ``grpo`` and its
    variant methods."""

    # -- online RL (GRPO arms) -------------------------------------------------------------------
    @property
    def variant_pattern(self) -> str:
        """The ``{variant}`` wildcard: base, rft, a DPO run, a GRPO arm."""
        dpo = f"(?:{self.runs.pattern[1:]}/)?dpo-(" + "|".join(self.models) + ")"
        return "|".join(["base", "rft", dpo, *(f"grpo-{re.escape(a)}" for a in self.grpo)])

    @property
    def grpo_shown(self) -> bool:
        """Table 3, its plot and the GRPO curves, when the config has GRPO arms."""
        return bool(self.grpo)

    def grpo_recipe(self, wildcards: Wildcards) -> str:
        return self.grpo[wildcards.grpo_arm].recipe_path

    def grpo_flags(self, wildcards: Wildcards) -> str:
        """A GRPO run's flags: its overrides that change its recipe, the executor's settings,
        the budget and the generation backend (codedpo.workflow.online)."""
        arm = self.grpo[wildcards.grpo_arm]
        runtime = self.runtime_dir if self.config["execution"]["runtime"] else "stdlib"
        sampling = self.config["sampling"]
        return " ".join(f for f in (
            flags.override_flags(arm.overrides, self.checked.grpo_recipes[arm.recipe_path]),
            "--execution " + shlex.quote(online.execution_settings(self.config["execution"],
                                                                   runtime)),
            f"--expected_file {self.results}/{online.EXPECTED}",
            online.budget_flag(self.config),
            online.vllm_flags(sampling["backend"], sampling["vllm"]),
        ) if f)  # fmt: skip

    def grpo_checkpoints(self, wildcards: Wildcards = None) -> list[str]:
        """The GRPO checkpoints of the tables' models, arm by arm."""
        return [
            f"{self.results}/checkpoints/{policy}/{arm.variant}"
            for policy in self.config["tables"]["models"]
            for arm in self.grpo.values()
        ]

    def grpo_labels(self, wildcards: Wildcards = None) -> str:
        """Their labels in the curves and the hack report: ``demo-codeqwen grpo pass_all``."""
        return " ".join(
            shlex.quote(f"{policy} grpo {arm.name}")
            for policy in self.config["tables"]["models"]
            for arm in self.grpo.values()
        )

    def grpo_rewards(self, wildcards: Wildcards = None) -> str:
        """The reward kinds each curve's run trained on, as ``--rewards`` JSON."""
        kinds = {}
        for policy in self.config["tables"]["models"]:
            for arm in self.grpo.values():
                merged = {**self.checked.grpo_recipes[arm.recipe_path], **arm.overrides}
                kinds[f"{policy} grpo {arm.name}"] = list(merged.get("rewards") or ["pass_all"])
        return shlex.quote(json.dumps(kinds, sort_keys=True))

    def bootstrap_flags(self, wildcards: Wildcards = None) -> str:
        """Table 3's paired bootstrap (``tables.bootstrap``), as Table 1's."""
        b = self.config["tables"]["bootstrap"]
        return (f"--bootstrap-resamples {int(b['resamples'])} --bootstrap-seed {int(b['seed'])} "
                f"--confidence {flags.number(b['confidence'])}")  # fmt: skip

    def released_flags(self, wildcards: Wildcards = None) -> str:
        """Table 3's note on benchmarks of problems released after a date (as Table 1's)."""
        return flags.released_flags(self.config)

    def grpo_budget_note(self, wildcards: Wildcards = None) -> str:
        return shlex.quote(online.budget_note(self.config)) if self.grpo else ""

    def budget_inputs(self, wildcards: Wildcards) -> dict[str, list[str]]:
        """What an evaluated variant cost (``codedpo budget``): the samples and executions it
        was trained on (every round up to its own) and its checkpoints (each round's)."""
        policy, variant = wildcards.policy, wildcards.variant
        if variant == "base":
            return {"samples": [], "executions": [], "checkpoints": []}
        if self.grpo_arm(wildcards) is not None:
            return {"samples": [], "executions": [],
                    "checkpoints": [f"{self.results}/checkpoints/{policy}/{variant}"]}  # fmt: skip
        if variant == "rft":
            where, chain, rounds = policy, self.runs.first, [1]
        elif not variant_chain(variant):  # the paper's run, on its own or another's pairs
            where, chain, rounds = self.variant_pairs_from(wildcards), self.runs.first, [1]
        else:
            chain, k = self.run_of(wildcards)
            where, rounds = policy, list(range(1, k + 1))
        out: dict[str, list[str]] = {"samples": [], "executions": [], "checkpoints": []}
        for k in rounds:
            seg = self.runs.samples_segment(chain, k)
            for kind in ("samples", "executions"):
                out[kind] += [
                    f"{self.results}/{kind}/{where}{seg}/shard{s}.jsonl" for s in self.shards
                ]
            if variant == "rft":
                out["checkpoints"].append(f"{self.results}/checkpoints/{policy}/rft")
            elif k == rounds[-1] and not variant_chain(variant):
                out["checkpoints"].append(f"{self.results}/checkpoints/{policy}/{variant}")
            else:
                out["checkpoints"].append(self.runs.checkpoint_dir(policy, chain, k))
        return out

    def budget_flags(self, wildcards: Wildcards) -> str:
        """``codedpo budget``'s identity of a variant (as ``codedpo score`` names it)."""
        out = [f"--variant {self.variant_method(wildcards)}"]
        if out[0] == "--variant dpo":
            out.append(f"--pairs-from {self.variant_pairs_from(wildcards)}")
        arm = self.grpo_arm(wildcards)
        if arm is not None:
            out.append(f"--arm {shlex.quote(arm.name)} --recipe {shlex.quote(arm.recipe)}")
        elif wildcards.variant not in ("base", "rft"):
            out += self.runs.run_flags(*self.run_of(wildcards))
        return " ".join(out)

    def table3_budgets(self, wildcards: Wildcards = None) -> list[str]:
        """The budget file of every variant Table 3 shows."""
        return [
            f"{self.results}/budget/{policy}/{variant}.json"
            for policy in self.config["tables"]["models"]
            for variant in self.eval_variants(policy)
        ]

    def grpo_cpus(self, wildcards: Wildcards) -> int:
        """A GRPO job's CPUs: the training threads, and ``execution.workers`` sandboxes per
        training process for its rewards (on the same node)."""
        training = self.config["training"]
        return resources.training_cpus(training["threads"], training["num_processes"]) + (
            self.config["execution"]["workers"] * training["num_processes"]
        )
