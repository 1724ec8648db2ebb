# Config validation and the helpers every stage uses. No logic beyond path and config lookups.
import json
import os
import shlex

from snakemake.utils import validate

# --configfile merges into config.yaml; a null entry removes a model, benchmark or training
# source it defines (configs/paper.yaml drops the demo's this way).
def without_nulls(mapping):
    return {k: v for k, v in (mapping or {}).items() if v is not None}


for section in ("models", "benchmarks"):
    config[section] = without_nulls(config.get(section))
if isinstance(config.get("train_problems"), dict):
    config["train_problems"]["sources"] = without_nulls(
        config["train_problems"].get("sources")
    )

validate(config, "../schemas/config.schema.yaml")

MODELS = list(config["models"])
BENCHMARKS = list(config["benchmarks"])
TRAIN_SOURCES = config["train_problems"]["sources"]
SHARDS = list(range(config["sampling"]["shards"]))


wildcard_constraints:
    policy="|".join(MODELS),
    pairs_from="|".join(MODELS),
    benchmark="|".join(BENCHMARKS),
    variant="base|rft|dpo-(" + "|".join(MODELS) + ")",
    shard=r"\d+",
    source="|".join(TRAIN_SOURCES),


def is_demo(policy):
    return "demo" in config["models"][policy]


def base_model_input(policy):
    """The base model's directory when the workflow builds it, else nothing (a hub id)."""
    return f"results/models/{policy}" if is_demo(policy) else []


def base_model_ref(policy):
    return (
        f"results/models/{policy}"
        if is_demo(policy)
        else config["models"][policy]["hub"]
    )


def variant_model(wildcards):
    """Model directory (or hub id) evaluated as {policy}/{variant}."""
    if wildcards.variant == "base":
        return base_model_ref(wildcards.policy)
    return f"results/checkpoints/{wildcards.policy}/{wildcards.variant}"


def variant_model_input(wildcards):
    if wildcards.variant == "base":
        return base_model_input(wildcards.policy)
    return f"results/checkpoints/{wildcards.policy}/{wildcards.variant}"


def off_policy_runs():
    """Table 2's ``(policy, pairs_from)`` DPO runs on another model's pairs.

    ``tables.off_policy`` lists them; true means every model on every other's, false none.
    """
    setting = config["tables"].get("off_policy", True)
    if setting is True:
        return [(m, o) for m in MODELS for o in MODELS if o != m]
    if setting is False:
        return []
    runs = []
    for i, run in enumerate(setting):
        for key in ("policy", "pairs_from"):
            if run[key] not in MODELS:
                raise ValueError(
                    f"config: field 'tables.off_policy.{i}.{key}': {run[key]!r} is not one "
                    f"of the models {MODELS}"
                )
        if run["policy"] == run["pairs_from"]:
            raise ValueError(
                f"config: field 'tables.off_policy.{i}': {run['policy']!r} on its own pairs "
                "is on-policy DPO, which every model gets anyway"
            )
        runs.append((run["policy"], run["pairs_from"]))
    return runs


OFF_POLICY = off_policy_runs()


def dpo_sources(policy):
    """Whose pairs train ``policy`` with DPO: its own, plus those Table 2 names."""
    return [policy] + [src for p, src in OFF_POLICY if p == policy]


def eval_variants(policy):
    return ["base", "rft"] + [f"dpo-{src}" for src in dpo_sources(policy)]


def cli_flags(overrides):
    """Recipe overrides as TRL command-line flags (--key value)."""
    flags = []
    for key, value in overrides.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        flags += [f"--{key}", str(value)]
    return " ".join(shlex.quote(f) for f in flags)


def execution_flags(execution):
    """The executor's command-line flags from the ``execution`` config slice."""
    backend = execution.get("backend", "auto")
    flags = [
        f"--workers {execution.get('workers', 2)}",
        f"--memory-mb {execution.get('memory_mb', 2048)}",
        f"--test-seconds {execution.get('test_seconds', 4.0)}",
        f"--min-test-seconds {execution.get('min_test_seconds', 1.0)}",
        f"--time-factor {execution.get('time_factor', 4.0)}",
        f"--sample-seconds {execution.get('sample_seconds', 60.0)}",
    ]
    if backend != "auto":
        flags.append(f"--backend {backend}")
    if execution.get("fast_check"):
        flags.append("--fast-check")
    if execution.get("apptainer_image"):
        flags.append(f"--apptainer-image {shlex.quote(execution['apptainer_image'])}")
    return " ".join(flags)


def split_flag(split):
    return f"--split {shlex.quote(split)}" if split else ""


def template_input(source):
    """The prompt template file of a problem source, if any (editing it reruns prepare)."""
    return source.get("prompt_template") or []


def subset_flags(source):
    """``codedpo prepare`` flags for a training source's random subset, if it asks for one."""
    if not source.get("max_problems"):
        return ""
    return f"--max-problems {source['max_problems']} --seed {source.get('seed', 0)}"


def export_flags(wildcards):
    """``python -m codedpo.sources`` flags for the training source whose file is
    ``resources/train_sources/{file}`` and that names the Hub dataset it comes from."""
    path = f"resources/train_sources/{wildcards.file}"
    for source in TRAIN_SOURCES.values():
        if source["path"] == path and source.get("hub"):
            flags = [f"--hub {shlex.quote(source['hub'])}"]
            flags.append(f"--split {shlex.quote(source.get('hub_split', 'train'))}")
            if source.get("hub_revision"):
                flags.append(f"--revision {shlex.quote(source['hub_revision'])}")
            return " ".join(flags)
    raise ValueError(
        f"no train_problems source with path {path!r} and a 'hub' to export it from"
    )


def paper_flags(wildcards):
    """``codedpo tables`` flags that put the paper's numbers beside ours: which hub id each
    policy is, and which of the paper's benchmarks (by format) each benchmark is."""
    path = config["tables"].get("paper_results")
    if not path:
        return ""
    # A demo policy has no hub id and gets no paper numbers, unless a config says which hub
    # model it stands in for (configs/rehearsal.yaml, to test the paper columns' wiring).
    stand_ins = config["tables"].get("paper_stand_ins") or {}
    for policy in stand_ins:
        if policy not in config["models"]:
            raise ValueError(
                f"config: field 'tables.paper_stand_ins.{policy}': not one of the models"
            )
    hub_ids = {
        policy: config["models"][policy].get("hub") or stand_ins.get(policy)
        for policy in config["tables"]["models"]
    }
    models = [f"{policy}={hub}" for policy, hub in hub_ids.items() if hub]
    benchmarks = [
        f"{name}={config['benchmarks'][name].get('format', 'problems')}"
        for name in config["tables"]["benchmarks"]
    ]
    flags = [f"--paper {shlex.quote(path)}"]
    if models:
        flags.append("--model-ids " + " ".join(shlex.quote(m) for m in models))
    flags.append("--benchmark-ids " + " ".join(shlex.quote(b) for b in benchmarks))
    return " ".join(flags)


def off_policy_flags(wildcards):
    """``codedpo tables`` flags for Table 2's off-policy rows and the bootstrap's settings."""
    shown = config["tables"]["models"]
    runs = [f"{p}={src}" for p, src in OFF_POLICY if p in shown and src in MODELS]
    boot = config["tables"].get("bootstrap") or {}
    flags = ["--off-policy " + " ".join(shlex.quote(r) for r in runs)]
    flags.append(f"--bootstrap-resamples {boot.get('resamples', 10000)}")
    flags.append(f"--bootstrap-seed {boot.get('seed', 0)}")
    flags.append(f"--confidence {boot.get('confidence', 0.95)}")
    return " ".join(flags)


def template_flag(source):
    path = source.get("prompt_template")
    return f"--prompt-template {shlex.quote(path)}" if path else ""


def training_gpus(wildcards):
    """One GPU per training process; the demo's tiny models train on the CPU."""
    return 0 if is_demo(wildcards.policy) else config["training"]["num_processes"]


def training_mem_mb(wildcards, attempt):
    # A 7B model with ZeRO-2 needs host memory for its optimizer shards and checkpoint writes.
    per_process = 4000 if is_demo(wildcards.policy) else 64000
    return per_process * config["training"]["num_processes"] * attempt


def training_cpus(wildcards):
    return config["training"].get("threads", 1) * config["training"]["num_processes"]


def demo_flags(wildcards):
    """`codedpo build-demo-model` flags from `models.<policy>.demo` (null values: defaults)."""
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(value))}"
        for key, value in config["models"][wildcards.policy]["demo"].items()
        if value is not None
    )


def demo_tokenizer_input(wildcards):
    """A tokenizer directory the policy is built on (editing it rebuilds), if it is one; a Hub
    id is a parameter only, and a missing directory is the build's clear error."""
    source = config["models"][wildcards.policy]["demo"].get("tokenizer")
    return source if source and os.path.isdir(source) else []
