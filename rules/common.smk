# Config checks and the helpers every stage uses. No logic beyond path and config lookups; the
# checks themselves are codedpo.config_check (tested in tests/test_config.py).
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.common.configfile import load_configfile

from codedpo import config_check, launch
from codedpo.demo import DemoModelArgs


# --configfile merges into config.yaml; a null entry removes a model, benchmark or training
# source it defines (configs/paper.yaml drops the demo's this way).
def without_nulls(mapping):
    return {k: v for k, v in (mapping or {}).items() if v is not None}


def config_layers():
    """The config files as the user wrote them, lowest precedence first, then --config."""
    given = [Path(f).resolve() for f in workflow.config_settings.configfiles]
    files = [f for f in workflow.configfiles if Path(f).resolve() not in given]
    files += list(workflow.config_settings.configfiles)
    layers = []
    for f in files:
        label = (
            os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f)
        )
        layers.append(config_check.Layer(label, load_configfile(f)))
    if workflow.config_settings.config:
        layers.append(
            config_check.Layer("--config", dict(workflow.config_settings.config))
        )
    return layers


def check_config():
    """Check the merged config at parse time; an error is one or two lines and exit status 1
    (no traceback into this file: the user's config file is what to fix)."""
    for section in ("models", "benchmarks", "arms"):
        if isinstance(config.get(section), dict):
            config[section] = without_nulls(config[section])
    if isinstance(config.get("train_problems"), dict) and isinstance(
        config["train_problems"].get("sources"), dict
    ):
        config["train_problems"]["sources"] = without_nulls(
            config["train_problems"]["sources"]
        )
    schema = config_check.load_schema(
        Path(workflow.basedir) / "schemas/config.schema.yaml"
    )
    try:
        return config_check.check(config, schema, config_layers())
    except config_check.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(1)


def in_order(names, first):
    """``names`` in a canonical order: those in ``first`` (a list the user ordered, e.g.
    tables.models) as listed, then the rest sorted; the order of keys in a config mapping
    depends on how config files were merged, and must not change what the jobs do."""
    return [n for n in first if n in names] + sorted(n for n in names if n not in first)


CHECKED = check_config()
MODELS = in_order(config["models"], config["tables"]["models"])
BENCHMARKS = in_order(config["benchmarks"], config["tables"]["benchmarks"])
TRAIN_SOURCES = {name: config["train_problems"]["sources"][name]
                 for name in sorted(config["train_problems"]["sources"])}  # fmt: skip
SHARDS = list(range(config["sampling"]["shards"]))
# Iterative rounds and arms (codedpo.rounds): each chain is an arm with one DPO recipe, trained
# for ROUNDS rounds. The paper's run (the first chain, round 1) keeps the paths it always had;
# every other run of a chain lives under /{arm}/{recipe}/r{round} (the {chain} wildcard).
CHAINS = CHECKED.chains
ROUNDS = config["rounds"]
SEP = "/"
ARMS_RE = "|".join(sorted({re.escape(c.arm) for c in CHAINS}))
RECIPES_RE = "|".join(sorted({re.escape(c.recipe) for c in CHAINS}))
CHAIN = f"{SEP}({ARMS_RE})/({RECIPES_RE})/r([1-9][0-9]*)"
SAMPLED = (
    config["eval"]["samples_per_problem"] > 0
)  # pass@k: a sampled evaluation beside greedy


wildcard_constraints:
    policy="|".join(MODELS),
    pairs_from="|".join(MODELS),
    benchmark="|".join(BENCHMARKS),
    variant=f"base|rft|(?:{CHAIN[1:]}/)?dpo-(" + "|".join(MODELS) + ")",
    shard=r"\d+",
    source="|".join(TRAIN_SOURCES),
    chain=f"(?:{CHAIN})?",
    draw="(?:/sampled)?",
    round=r"[1-9][0-9]*",


# Long jobs run through `codedpo launch` (codedpo.launch): it stops the job's whole process
# tree on SIGINT/SIGTERM and when this snakemake process is gone, even after a SIGKILL.
os.environ[launch.WATCH_ENV] = launch.identity(os.getpid()) or ""
LAUNCH = "codedpo launch --"


onstart:
    launch.forward_stop_signals()
    check_site_placeholders()


def check_site_placeholders():
    """Unedited EDIT_ME values of profiles/slurm are one clear error before anything is
    submitted (a dry run still works, to show the plan)."""
    settings = workflow.resource_settings
    given = [arg.partition("=")[::2] for arg in settings.default_resources.args]
    found = [
        f"default-resources: {name}={value}"
        for name, value in given
        if "EDIT_ME" in value
    ] + [
        f"set-resources: {rule}: {name}={getattr(value, 'orig_arg', value)}"
        for rule, values in settings.overwrite_resources.items()
        for name, value in values.items()
        if "EDIT_ME" in str(getattr(value, "orig_arg", value))
    ]
    if found:
        print(
            f"profile error: {found[0]} is a placeholder (lines marked EDIT in "
            "profiles/slurm/config.yaml): set your site's value (sinfo -s; sacctmgr show assoc "
            "user=$USER) or delete the line"
            + (f"; {len(found) - 1} more like it" if len(found) > 1 else ""),
            file=sys.stderr,
        )
        sys.exit(1)


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
    """Every evaluated variant of ``policy``: base, RFT, the paper's DPO runs (Table 2's too),
    then every other run of every chain."""
    variants = ["base", "rft"] + [f"dpo-{src}" for src in dpo_sources(policy)]
    return variants + [
        f"{segment(chain, k)[1:]}/dpo-{policy}"
        for chain in CHAINS
        for k in range(1, ROUNDS + 1)
        if segment(chain, k)
    ]


# -- canonical params ----------------------------------------------------------------------------
# Every rule's params are exactly the flags its command gets, in a fixed order and spelling
# (numbers by their type, keys sorted): Snakemake reruns a job when its params change, so key
# order, 1 vs 1.0, or an override that repeats the recipe's value must not count as a change.
# Settings that only schedule work (execution.workers, training.threads) reach the command
# through `threads:`/`resources:`, which are not rerun triggers.
def number(value):
    """A float flag as one spelling: 0.8, 1.0, 0.0001."""
    return repr(float(value))


def flag_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def cli_flags(options):
    """``--key value`` flags, keys sorted; a list is one flag with several values (TRL's
    parser reads list fields as ``--loss_type sigmoid ipo``)."""
    flags = []
    for key in sorted(options):
        value = options[key]
        values = value if isinstance(value, list) else [value]
        flags += [f"--{key}", *(flag_value(v) for v in values)]
    return " ".join(shlex.quote(f) for f in flags)


def train_flags(method):
    """The overrides that change the recipe's values (an override equal to the recipe's value
    is the same training)."""
    recipe = CHECKED.recipes[method]
    overrides = config[method].get("overrides") or {}
    return cli_flags(
        {k: v for k, v in overrides.items() if k not in recipe or recipe[k] != v}
    )


def demo_flags(policy):
    """Build flags that differ from codedpo.demo.DemoModelArgs' defaults (a default written
    out is the same model)."""
    options = config["models"][policy]["demo"]
    return " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(flag_value(options[k]))}"
        for k in sorted(options)
        if options[k] is not None and options[k] != getattr(DemoModelArgs, k)
    )


def execution_flags(execution):
    """The executor's flags from the ``execution`` config slice (``--workers`` comes from the
    rule's threads)."""
    flags = [
        f"--memory-mb {int(execution['memory_mb'])}",
        f"--test-seconds {number(execution['test_seconds'])}",
        f"--min-test-seconds {number(execution['min_test_seconds'])}",
        f"--time-factor {number(execution['time_factor'])}",
        f"--sample-seconds {number(execution['sample_seconds'])}",
    ]
    if execution["backend"] != "auto":
        flags.append(f"--backend {execution['backend']}")
    if execution["fast_check"]:
        flags.append("--fast-check")
    if execution["backend"] == "apptainer" and execution.get("apptainer_image"):
        flags.append(f"--apptainer-image {shlex.quote(execution['apptainer_image'])}")
    if int(execution["stack_mb"]) != 256:
        flags.append(f"--stack-mb {int(execution['stack_mb'])}")
    return " ".join(flags)


RUNTIME = "resources/runtime/judge"


def runtime_input():
    """The judge runtime directory, when the config names one (its build is an input of every
    execution job: another runtime is another verdict)."""
    return RUNTIME if config["execution"].get("runtime") else []


def runtime_flag():
    return f"--runtime {RUNTIME}" if config["execution"].get("runtime") else ""


def exclude_flags(benchmark, flag):
    """``--exclude`` / ``--excluded`` flags of a benchmark's excluded tasks (sorted)."""
    exclude = config["benchmarks"][benchmark].get("exclude") or {}
    if not exclude:
        return ""
    return f"{flag} " + " ".join(
        shlex.quote(f"{task}={exclude[task]}") for task in sorted(exclude)
    )


def filter_flags():
    filters = config["train_filters"]
    return f"--ngram {int(filters['ngram'])} --threshold {number(filters['threshold'])}"


def sampling_flags():
    s = config["sampling"]
    return (
        f"--num-shards {int(s['shards'])} --n {int(s['n'])} "
        f"--temperature {number(s['temperature'])} --top-p {number(s['top_p'])} "
        f"--max-new-tokens {int(s['max_new_tokens'])} --seed {int(s['seed'])} "
        f"--batch-size {int(s['batch_size'])}"
    )


def eval_flags():
    e = config["eval"]
    return f"--max-new-tokens {int(e['max_new_tokens'])} --batch-size {int(e['batch_size'])}"


def pairs_flags(pairs):
    """``codedpo build-pairs`` flags of pair settings; the defaults (random pairs by the
    fraction of tests passed, the paper's) are left out."""
    flags = f"--seed {int(pairs['seed'])} --max-pairs-per-problem {int(pairs['max_pairs_per_problem'])}"
    if pairs.get("strategy", "random") != "random":
        flags += f" --strategy {pairs['strategy']}"
    if pairs.get("score", "fraction") != "fraction":
        flags += f" --score {pairs['score']}"
    if pairs.get("rejected_verdicts"):
        flags += " --rejected-verdict " + " ".join(pairs["rejected_verdicts"])
    return flags


def eval_sampling_flags():
    """``codedpo sample`` flags of the pass@k samples of a benchmark."""
    e = config["eval"]
    return (
        f"--n {int(e['samples_per_problem'])} --temperature {number(e['temperature'])} "
        f"--top-p {number(e['top_p'])} --max-new-tokens {int(e['max_new_tokens'])} "
        f"--seed {int(e['seed'])} --batch-size {int(e['batch_size'])}"
    )


def score_flags(wildcards):
    """``codedpo score`` flags beside the policy and variant: excluded tasks, which run of a
    chain the variant is, and the sampled executions' pass@k."""
    flags = [exclude_flags(wildcards.benchmark, "--excluded")]
    if wildcards.variant not in ("base", "rft"):
        flags += run_flags(*run_of(wildcards))
    if SAMPLED:
        flags.append(f"--sampled-executions {sampled_executions_input(wildcards)}")
        flags.append(
            "--pass-at-k " + " ".join(str(k) for k in config["eval"]["pass_at_k"])
        )
    return " ".join(f for f in flags if f)


def sampled_executions_input(wildcards):
    """The pass@k samples' executions of a scored variant, when there are any."""
    if not SAMPLED:
        return []
    wc = wildcards
    return (
        f"results/eval/{wc.policy}/{wc.variant}/{wc.benchmark}/sampled/executions.jsonl"
    )


def groups_flag(benchmark):
    groups = config["benchmarks"][benchmark].get("groups")
    return "--groups " + " ".join(shlex.quote(g) for g in groups) if groups else ""


def source_flags(source):
    """``codedpo prepare`` flags of a problem source (a benchmark or a training source)."""
    flags = [f"--format {source.get('format', 'problems')}"]
    if source.get("split"):
        flags.append(f"--split {shlex.quote(source['split'])}")
    if source.get("prompt_template"):
        flags.append(f"--prompt-template {shlex.quote(source['prompt_template'])}")
    if source.get("max_problems"):
        # the seed only matters when a subset is drawn
        flags.append(f"--max-problems {source['max_problems']} --seed {source['seed']}")
    return " ".join(flags)


def template_input(source):
    """The prompt template file of a problem source, if any (editing it reruns prepare)."""
    return source.get("prompt_template") or []


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


def torch_threads():
    return config["training"]["threads"]


def off_policy_flags(wildcards):
    """``codedpo tables`` flags for Table 2's off-policy rows and the bootstrap's settings."""
    shown = config["tables"]["models"]
    runs = [f"{p}={src}" for p, src in OFF_POLICY if p in shown and src in MODELS]
    boot = config["tables"].get("bootstrap") or {}
    flags = ["--off-policy " + " ".join(shlex.quote(r) for r in runs)]
    flags.append(f"--bootstrap-resamples {int(boot.get('resamples', 10000))}")
    flags.append(f"--bootstrap-seed {int(boot.get('seed', 0))}")
    flags.append(f"--confidence {number(boot.get('confidence', 0.95))}")
    return " ".join(flags)


def table_flags(wildcards):
    """``codedpo tables`` flags beside the paper's numbers: Table 2's runs, the bootstrap, and
    the round table when there are rounds or arms."""
    flags = off_policy_flags(wildcards)
    return f"{flags} --rounds-table" if rounds_shown() else flags


def training_gpus(wildcards):
    """One GPU per training process; the demo's tiny models train on the CPU."""
    return 0 if is_demo(wildcards.policy) else config["training"]["num_processes"]


def training_mem_mb(wildcards, attempt):
    # A 7B model with ZeRO-2 needs host memory for its optimizer shards and checkpoint writes.
    per_process = 4000 if is_demo(wildcards.policy) else 64000
    return per_process * config["training"]["num_processes"] * attempt


def training_cpus(wildcards):
    return config["training"]["threads"] * config["training"]["num_processes"]


# Generation backends: `codedpo sample` flags and GPUs of the sampling ("sampling") and eval
# generation ("eval") jobs, from `sampling.backend` / `eval.backend`; both use the vLLM engine
# settings `sampling.vllm`.
def generation_backend(stage):
    return config[stage].get("backend", "hf"), config["sampling"].get("vllm") or {}


def generation_flags(stage):
    """``codedpo sample`` flags of the stage's backend and vLLM engine settings."""
    backend, vllm = generation_backend(stage)
    if backend != "vllm":
        return "--backend hf"
    flags = [
        "--backend vllm",
        f"--tensor-parallel-size {vllm.get('tensor_parallel_size', 1)}",
        f"--gpu-memory-utilization {number(vllm.get('gpu_memory_utilization', 0.9))}",
        (
            "--deterministic-scheduling"
            if vllm.get("deterministic_scheduling", True)
            else "--no-deterministic-scheduling"
        ),
        "--batch-invariant" if vllm.get("batch_invariant") else "--no-batch-invariant",
    ]
    if vllm.get("max_model_len"):
        flags.append(f"--max-model-len {vllm['max_model_len']}")
    return " ".join(flags)


def generation_gpus(stage):
    """GPUs of one generation job: vLLM's tensor-parallel size, else one."""
    backend, vllm = generation_backend(stage)
    return vllm.get("tensor_parallel_size", 1) if backend == "vllm" else 1


def demo_tokenizer_input(wildcards):
    """A tokenizer directory the policy is built on (editing it rebuilds), if it is one; a Hub
    id is a parameter only, and a missing directory is the build's clear error."""
    source = config["models"][wildcards.policy]["demo"].get("tokenizer")
    return source if source and os.path.isdir(source) else []
