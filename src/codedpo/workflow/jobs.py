"""What each rule's jobs get: inputs, params and resources, as functions of the checked config.

``rules/common.smk`` builds one :class:`Workflow` from ``config`` and the result of
:func:`codedpo.workflow.config.check`, and the rules call it (``W.run_pairs``,
``W.sampling_flags()``): the rule files hold rules, and the logic that builds their paths and
flags is here, unit-tested without running Snakemake (``tests/test_workflow_logic.py``).

Methods that Snakemake calls per job take its ``wildcards`` object (any object with the
wildcards as attributes works: the tests pass a namespace); the others are called once while
the workflow is parsed. The flags themselves are :mod:`codedpo.workflow.flags`, the paths of
chains and rounds :mod:`codedpo.workflow.runs`, the resources :mod:`codedpo.workflow.resources`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from codedpo.workflow import flags, online, resources
from codedpo.workflow.chains import Chain
from codedpo.workflow.config import Checked
from codedpo.workflow.online_jobs import OnlineJobs
from codedpo.workflow.runs import Runs, off_policy_runs, variant_chain, variant_name

Wildcards = Any  # Snakemake's Wildcards, or any object with the wildcards as attributes


def in_order(names: Sequence[str], first: Sequence[str]) -> list[str]:
    """``names`` in a canonical order: those in ``first`` (a list the user ordered, e.g.
    tables.models) as listed, then the rest sorted; the order of keys in a config mapping
    depends on how config files were merged, and must not change what the jobs do."""
    return [n for n in first if n in names] + sorted(n for n in names if n not in first)


class Workflow(OnlineJobs):
    """The checked config as the rules use it. Build it once, after the config check."""

    # The judge runtime's directory (rules/problems.smk builds it): an input of every execution
    # job, since another runtime is another verdict.
    runtime_dir = "resources/runtime/judge"

    def __init__(self, config: dict, checked: Checked):
        self.config = config
        self.checked = checked
        # The experiment's folder: every output below it; logs and benchmark timings beside
        # the outputs (the default config keeps them at the top: logs/, benchmarks/).
        self.results = config["results"]
        self.logs = "logs" if self.results == "results" else f"{self.results}/logs"
        self.bench = "benchmarks" if self.results == "results" else f"{self.results}/benchmarks"
        self.models = in_order(config["models"], config["tables"]["models"])
        self.benchmarks = in_order(config["benchmarks"], config["tables"]["benchmarks"])
        sources = config["train_problems"]["sources"]
        self.train_sources = {name: sources[name] for name in sorted(sources)}
        self.shards = list(range(config["sampling"]["shards"]))
        # Iterative rounds and arms: each chain is an arm with one DPO recipe, trained for
        # config["rounds"] rounds (codedpo.workflow.runs says where each run lives).
        self.runs = Runs(checked.chains, config["rounds"], self.results)
        self.off_policy = off_policy_runs(config["tables"]["off_policy"], self.models)
        # pass@k: a sampled evaluation beside the greedy one
        self.sampled = config["eval"]["samples_per_problem"] > 0
        # Online RL: GRPO arms, one run per policy each (codedpo.workflow.online)
        self.grpo = {arm.name: arm for arm in online.grpo_arms(config)}

    # -- models --------------------------------------------------------------------------------
    def is_demo(self, policy: str) -> bool:
        return "demo" in self.config["models"][policy]

    def model_input(self, policy: str) -> str | list:
        """The base model's directory when the workflow builds it, else nothing (a hub id)."""
        return f"{self.results}/models/{policy}" if self.is_demo(policy) else []

    def model_ref(self, policy: str) -> str:
        """What a command loads as the base model: the built directory, or the hub id."""
        if self.is_demo(policy):
            return f"{self.results}/models/{policy}"
        return self.config["models"][policy]["hub"]

    def base_model_input(self, wildcards: Wildcards) -> str | list:
        return self.model_input(wildcards.policy)

    def base_model_ref(self, wildcards: Wildcards) -> str:
        return self.model_ref(wildcards.policy)

    def variant_model(self, wildcards: Wildcards) -> str:
        """Model directory (or hub id) evaluated as ``{policy}/{variant}``."""
        if wildcards.variant == "base":
            return self.model_ref(wildcards.policy)
        return f"{self.results}/checkpoints/{wildcards.policy}/{wildcards.variant}"

    def variant_model_input(self, wildcards: Wildcards) -> str | list:
        if wildcards.variant == "base":
            return self.model_input(wildcards.policy)
        return f"{self.results}/checkpoints/{wildcards.policy}/{wildcards.variant}"

    def demo_flags(self, wildcards: Wildcards) -> str:
        return flags.demo_flags(self.config["models"][wildcards.policy]["demo"])

    def demo_tokenizer_input(self, wildcards: Wildcards) -> str | list:
        """A tokenizer directory the policy is built on (editing it rebuilds), if it is one; a
        Hub id is a parameter only, and a missing directory is the build's clear error."""
        source = self.config["models"][wildcards.policy]["demo"].get("tokenizer")
        return source if source and os.path.isdir(source) else []

    # -- problems ------------------------------------------------------------------------------
    def problem_source(self, wildcards: Wildcards) -> dict:
        """The config entry a prepare job reads: a training source (``{source}``) or a benchmark
        (``{benchmark}``)."""
        name = getattr(wildcards, "source", None)
        if name is not None:
            return self.train_sources[name]
        return self.config["benchmarks"][wildcards.benchmark]

    def source_path(self, wildcards: Wildcards) -> str:
        return self.problem_source(wildcards)["path"]

    def source_template(self, wildcards: Wildcards) -> str | list:
        """The prompt template file of a problem source, if any (editing it reruns prepare)."""
        return self.problem_source(wildcards)["prompt_template"] or []

    def source_flags(self, wildcards: Wildcards) -> str:
        return flags.source_flags(self.problem_source(wildcards))

    def exclude_flags(self, wildcards: Wildcards) -> str:
        """``codedpo prepare``'s excluded tasks of a benchmark."""
        exclude = self.config["benchmarks"][wildcards.benchmark]["exclude"]
        return flags.exclude_flags(exclude, "--exclude")

    def export_flags(self, wildcards: Wildcards) -> str:
        """``codedpo export-source`` flags of ``resources/train_sources/{file}``."""
        path = f"resources/train_sources/{wildcards.file}"
        return flags.export_flags(self.train_sources.values(), path)

    def check_references_flag(self, wildcards: Wildcards) -> str:
        """A benchmark's own references must pass before they score anyone (training problems'
        failing references are the filter's drops)."""
        return "--check-references" if wildcards.name in self.benchmarks else ""

    def runtime_input(self) -> str | list:
        """The judge runtime directory, when the config names one."""
        return self.runtime_dir if self.config["execution"]["runtime"] else []

    def runtime_flag(self) -> str:
        # `stdlib` when the config says null: the command's default is the built runtime.
        return f"--runtime {self.runtime_dir if self.config['execution']['runtime'] else 'stdlib'}"

    def filter_flags(self) -> str:
        return flags.filter_flags(self.config["train_filters"])

    def execution_flags(self) -> str:
        return flags.execution_flags(self.config["execution"])

    def slice_flags(self) -> str:
        return flags.slice_flags(self.config)

    # -- runs of chains ------------------------------------------------------------------------
    def run_of(self, wildcards: Wildcards) -> tuple[Chain, int]:
        """``(chain, round)`` of a job's ``{chain}`` wildcard (or of an eval ``{variant}``)."""
        text = getattr(wildcards, "chain", None)
        if text is None:
            text = variant_chain(wildcards.variant)
        return self.runs.run_of(text)

    def round_problems(self, wildcards: Wildcards) -> str:
        """The training problems of the job's round: the pool, or the round's disjoint slice."""
        if self.config["rounds_problems"] == "same":
            return f"{self.results}/problems/train.jsonl"
        return f"{self.results}/problems/rounds/r{self.run_of(wildcards)[1]}.jsonl"

    def start_model_input(self, wildcards: Wildcards) -> str | list:
        """What run ``k`` of a chain samples from and trains from: the original model in round
        1, else round k-1's checkpoint."""
        chain, k = self.run_of(wildcards)
        if k == 1:
            return self.model_input(wildcards.policy)
        return self.runs.checkpoint_dir(wildcards.policy, chain, k - 1)

    def start_model_ref(self, wildcards: Wildcards) -> str:
        chain, k = self.run_of(wildcards)
        if k == 1:
            return self.model_ref(wildcards.policy)
        return self.runs.checkpoint_dir(wildcards.policy, chain, k - 1)

    def sampling_model_input(self, wildcards: Wildcards) -> str | list:
        """The model a sampling job draws from; round 1 samples are shared by every chain, so a
        chain's own samples start at round 2."""
        if wildcards.chain and self.run_of(wildcards)[1] == 1:
            raise ValueError(
                f"round 1 of every arm samples at {self.results}/samples/{wildcards.policy}/"
            )
        return self.start_model_input(wildcards)

    def _run_shards(self, wildcards: Wildcards, kind: str) -> list[str]:
        chain, k = self.run_of(wildcards)
        where = f"{wildcards.policy}{self.runs.samples_segment(chain, k)}"
        return [f"{self.results}/{kind}/{where}/shard{shard}.jsonl" for shard in self.shards]

    def run_samples(self, wildcards: Wildcards) -> list[str]:
        """The sample shards a run's pairs are built from."""
        return self._run_shards(wildcards, "samples")

    def run_executions(self, wildcards: Wildcards) -> list[str]:
        """The execution shards of :meth:`run_samples`."""
        return self._run_shards(wildcards, "executions")

    def run_pairs(self, wildcards: Wildcards) -> str:
        """The pairs a DPO run trains on: its own chain's (a Table 2 run: another model's)."""
        if not wildcards.chain:
            return f"{self.results}/pairs/{wildcards.pairs_from}/pairs.jsonl"
        if wildcards.pairs_from != wildcards.policy:
            raise ValueError("off-policy DPO (Table 2) is a run of the paper's round 1 only")
        chain, k = self.run_of(wildcards)
        where = f"{wildcards.policy}{self.runs.pairs_segment(chain, k)}"
        return f"{self.results}/pairs/{where}/pairs.jsonl"

    def pairs_flags(self, wildcards: Wildcards) -> str:
        """``codedpo build-pairs`` flags of the run's chain."""
        return flags.pairs_flags(self.run_of(wildcards)[0].pairs)

    def _original_reference(self, k: int) -> bool:
        """``rounds_reference: original``: rounds after the first keep the original model as
        the DPO reference (TRL's default is the starting model)."""
        return k > 1 and self.config["rounds_reference"] == "original"

    def reference_input(self, wildcards: Wildcards) -> str | list:
        """The original model's directory, where it is the reference and the workflow builds it."""
        if self._original_reference(self.run_of(wildcards)[1]):
            return self.model_input(wildcards.policy)
        return []

    def dpo_recipe(self, wildcards: Wildcards) -> str:
        return self.run_of(wildcards)[0].recipe_path

    def dpo_flags(self, wildcards: Wildcards) -> str:
        """The DPO run's flags: its chain's overrides that change its recipe's values, and the
        reference model where it is not TRL's default (the starting model)."""
        chain, k = self.run_of(wildcards)
        out = flags.override_flags(chain.overrides, self.checked.dpo_recipes[chain.recipe_path])
        if self._original_reference(k):
            ref = shlex.quote(self.model_ref(wildcards.policy))
            out = f"{out} --ref_model_name_or_path {ref}".strip()
        return out

    def train_flags(self, method: str) -> str:
        """The ``dpo``/``rft`` overrides that change the method's recipe."""
        return flags.override_flags(self.config[method]["overrides"], self.checked.recipes[method])

    # -- generation ----------------------------------------------------------------------------
    def sampling_flags(self) -> str:
        return flags.sampling_flags(self.config["sampling"])

    def eval_flags(self) -> str:
        return flags.eval_flags(self.config["eval"])

    def eval_sampling_flags(self) -> str:
        return flags.eval_sampling_flags(self.config["eval"])

    def generation_flags(self, stage: str) -> str:
        """``codedpo sample``'s backend flags of ``stage`` (``sampling`` or ``eval``; both use
        the engine settings ``sampling.vllm``)."""
        backend, vllm = self.config[stage]["backend"], self.config["sampling"]["vllm"]
        return flags.generation_flags(backend, vllm)

    # -- evaluation ----------------------------------------------------------------------------
    def dpo_sources(self, policy: str) -> list[str]:
        """Whose pairs train ``policy`` with DPO: its own, plus those Table 2 names."""
        return [policy] + [src for p, src in self.off_policy if p == policy]

    def eval_variants(self, policy: str) -> list[str]:
        """Every evaluated variant of ``policy``: base, RFT, the paper's DPO runs (Table 2's
        too), then every other run of every chain, then the GRPO arms."""
        variants = ["base", "rft"] + [f"dpo-{src}" for src in self.dpo_sources(policy)]
        return variants + self.runs.variants(policy) + [a.variant for a in self.grpo.values()]

    def variant_method(self, wildcards: Wildcards) -> str:
        """``base``, ``rft``, ``dpo`` or ``grpo`` of an eval variant."""
        return variant_name(wildcards.variant).split("-")[0]

    def variant_pairs_from(self, wildcards: Wildcards) -> str:
        """Whose pairs a DPO variant was trained on (the policy itself for the others)."""
        name = variant_name(wildcards.variant)
        if name.startswith("dpo-"):
            return name.split("-", 1)[1]
        return wildcards.policy

    def grpo_arm(self, wildcards: Wildcards) -> online.GrpoArm | None:
        """The GRPO arm of a job's ``{grpo_arm}`` wildcard or ``grpo-{arm}`` variant."""
        name = getattr(wildcards, "grpo_arm", None)
        if name is None:
            variant = variant_name(wildcards.variant)
            name = variant[len("grpo-") :] if variant.startswith("grpo-") else None
        return self.grpo.get(name) if name is not None else None

    def sampled_executions_input(self, wildcards: Wildcards) -> str | list:
        """The pass@k samples' executions of a scored variant, when there are any."""
        if not self.sampled:
            return []
        wc = wildcards
        return (
            f"{self.results}/eval/{wc.policy}/{wc.variant}/{wc.benchmark}/sampled/executions.jsonl"
        )

    def groups_flag(self, wildcards: Wildcards) -> str:
        return flags.groups_flag(self.config["benchmarks"][wildcards.benchmark]["groups"])

    def score_flags(self, wildcards: Wildcards) -> str:
        """``codedpo score`` flags beside the policy and variant: excluded tasks, which run of a
        chain the variant is, and the sampled executions' pass@k."""
        exclude = self.config["benchmarks"][wildcards.benchmark]["exclude"]
        out = [flags.exclude_flags(exclude, "--excluded")]
        arm = self.grpo_arm(wildcards)
        if arm is not None:
            out.append(f"--arm {shlex.quote(arm.name)} --recipe {shlex.quote(arm.recipe)}")
        elif wildcards.variant not in ("base", "rft"):
            out += self.runs.run_flags(*self.run_of(wildcards))
        if self.sampled:
            out.append(f"--sampled-executions {self.sampled_executions_input(wildcards)}")
            out.append("--pass-at-k " + " ".join(str(k) for k in self.config["eval"]["pass_at_k"]))
        return " ".join(f for f in out if f)

    # -- tables and reports --------------------------------------------------------------------
    @property
    def rounds_shown(self) -> bool:
        """The round table and plot, when there is more than the paper's run to show."""
        return self.runs.shown

    def table_scores(self, wildcards: Wildcards = None) -> list[str]:
        """Every score file the tables and plots read, in table order."""
        tables = self.config["tables"]
        return [
            f"{self.results}/eval/{policy}/{variant}/{benchmark}/scores.json"
            for policy in tables["models"]
            for variant in self.eval_variants(policy)
            for benchmark in tables["benchmarks"]
        ]

    def paper_flags(self, wildcards: Wildcards = None) -> str:
        return flags.paper_flags(self.config)

    def table_flags(self, wildcards: Wildcards = None) -> str:
        """``codedpo tables`` flags beside the paper's numbers: Table 2's runs, the bootstrap,
        and the round table when there are rounds or arms."""
        shown = self.config["tables"]["models"]
        runs = [(p, src) for p, src in self.off_policy if p in shown and src in self.models]
        out = flags.off_policy_flags(runs, self.config["tables"]["bootstrap"])
        return f"{out} --rounds-table" if self.rounds_shown else out

    def pair_runs(self) -> list[tuple[str, str, str]]:
        """``(policy, path segment, label)`` of every set of pairs the tables' runs train on."""
        return self.runs.pair_runs(self.config["tables"]["models"])

    def hack_report_stats(self) -> list[str]:
        return [
            f"{self.results}/pairs/{policy}{where}/stats.json"
            for policy, where, _ in self.pair_runs()
        ]

    def trained_runs(self) -> list[tuple[str, str]]:
        """``(checkpoint, label)`` of every run the tables' models train: RFT, every DPO run,
        every GRPO arm (the training curves)."""
        return [
            (f"{self.results}/checkpoints/{policy}/{variant}", f"{policy} {variant}")
            for policy in self.config["tables"]["models"]
            for variant in self.eval_variants(policy)
            if variant != "base"
        ]

    def trained_checkpoints(self, wildcards: Wildcards = None) -> list[str]:
        return [checkpoint for checkpoint, _ in self.trained_runs()]

    def trained_labels(self, wildcards: Wildcards = None) -> str:
        return " ".join(shlex.quote(label) for _, label in self.trained_runs())

    def hack_report_labels(self) -> str:
        """The labels of the hack report's rows: each set of pairs, then each GRPO run."""
        pairs = " ".join(shlex.quote(label) for _, _, label in self.pair_runs())
        return f"{pairs} {self.grpo_labels()}" if self.grpo else pairs

    # -- resources -----------------------------------------------------------------------------
    def model_mem_mb(self, wildcards: Wildcards, attempt: int) -> int:
        return resources.model_mem_mb(self.is_demo(wildcards.policy), attempt)

    def analysis_gpus(self, wildcards: Wildcards) -> int:
        """One GPU for the reward analysis of a hub model; the demo's runs on the CPU."""
        return 0 if self.is_demo(wildcards.policy) else 1

    def generation_resources(self, stage: str) -> dict[str, Callable | int]:
        """``gpu``, ``mem_mb`` and ``batch_size`` of the generation jobs of ``stage``
        (``sampling`` or ``eval``): the three generation rules share them; each sets its own
        runtime. The batch size is a resource, not a param: samples do not depend on it
        (:mod:`codedpo.sampling.hf_backend`), so changing it reruns nothing."""
        backend, vllm = self.config[stage]["backend"], self.config["sampling"]["vllm"]
        gpus = resources.generation_gpus(backend, vllm)

        def gpu(wildcards: Wildcards) -> int:
            return 0 if self.is_demo(wildcards.policy) else gpus

        return {"gpu": gpu, "mem_mb": self.model_mem_mb,
                "batch_size": int(self.config[stage]["batch_size"])}  # fmt: skip

    def training_gpus(self, wildcards: Wildcards) -> int:
        processes = self.config["training"]["num_processes"]
        return resources.training_gpus(self.is_demo(wildcards.policy), processes)

    def training_mem_mb(self, wildcards: Wildcards, attempt: int) -> int:
        processes = self.config["training"]["num_processes"]
        return resources.training_mem_mb(self.is_demo(wildcards.policy), processes, attempt)

    def training_cpus(self, wildcards: Wildcards) -> int:
        training = self.config["training"]
        return resources.training_cpus(training["threads"], training["num_processes"])
