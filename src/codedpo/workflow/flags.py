"""The command-line flags the rules pass to ``codedpo`` commands, built from the checked config.

Every rule's params are exactly the flags its command gets, in a fixed order and spelling
(numbers by their type, keys sorted): Snakemake reruns a job when its params change, so key
order, ``1`` vs ``1.0``, or an override that repeats the recipe's value must not count as a
change. Settings that only schedule work (``execution.workers``, ``training.threads``) reach the
command through the rule's ``threads:``/``resources:``, which are not rerun triggers.

Each function takes the config slice it reads (already checked and filled with the schema's
defaults by :func:`codedpo.workflow.config.check`) and returns one string of flags.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from codedpo.execution.backends import SandboxConfig
from codedpo.models.demo import DemoModelArgs

# codedpo build-pairs' own defaults, the paper's pairs: left out of its command, which then reads
# as the paper's.
PAIRS_CLI_DEFAULTS = {"strategy": "random", "score": "fraction"}


# -- spelling ------------------------------------------------------------------------------------
def number(value: float) -> str:
    """A float flag as one spelling: 0.8, 1.0, 0.0001 (a YAML ``1`` and ``1.0`` are one value)."""
    return repr(float(value))


def flag_value(value: Any) -> str:
    """A config value as a flag value: YAML booleans as ``true``/``false`` (TRL's parser reads
    them so), floats by :func:`number`, mappings as JSON with sorted keys."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def cli_flags(options: Mapping[str, Any]) -> str:
    """``--key value`` flags, keys sorted; a list is one flag with several values (TRL's
    parser reads list fields as ``--loss_type sigmoid ipo``)."""
    flags: list[str] = []
    for key in sorted(options):
        value = options[key]
        values = value if isinstance(value, list) else [value]
        flags += [f"--{key}", *(flag_value(v) for v in values)]
    return " ".join(shlex.quote(f) for f in flags)


# -- training ------------------------------------------------------------------------------------
def override_flags(overrides: Mapping[str, Any] | None, recipe: Mapping[str, Any]) -> str:
    """The overrides that change the recipe's values: an override equal to the recipe's value
    is the same training, and must not rerun it."""
    return cli_flags(
        {k: v for k, v in (overrides or {}).items() if k not in recipe or recipe[k] != v}
    )


def demo_flags(options: Mapping[str, Any]) -> str:
    """``codedpo build-demo-model`` flags that differ from
    :class:`codedpo.models.demo.DemoModelArgs`' defaults (a default written out is the same
    model)."""
    return " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(flag_value(options[k]))}"
        for k in sorted(options)
        if options[k] is not None and options[k] != getattr(DemoModelArgs, k)
    )


# -- problems and execution ----------------------------------------------------------------------
def execution_flags(execution: Mapping[str, Any]) -> str:
    """The executor's flags from the ``execution`` config slice (``--workers`` comes from the
    rule's threads); the backend, fast check, image and stack appear only where they differ from
    ``codedpo execute``'s own behaviour."""
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
    if execution["backend"] == "apptainer" and execution["apptainer_image"]:
        flags.append(f"--apptainer-image {shlex.quote(execution['apptainer_image'])}")
    if int(execution["stack_mb"]) != SandboxConfig.stack_mb:
        flags.append(f"--stack-mb {int(execution['stack_mb'])}")
    return " ".join(flags)


def filter_flags(filters: Mapping[str, Any]) -> str:
    """``codedpo filter``'s decontamination settings (``train_filters``)."""
    return f"--ngram {int(filters['ngram'])} --threshold {number(filters['threshold'])}"


def exclude_flags(exclude: Mapping[str, str] | None, flag: str) -> str:
    """``--exclude`` / ``--excluded`` flags of a benchmark's excluded tasks (sorted by id)."""
    if not exclude:
        return ""
    return f"{flag} " + " ".join(shlex.quote(f"{task}={exclude[task]}") for task in sorted(exclude))


def groups_flag(groups: Iterable[str] | None) -> str:
    """``codedpo score``'s test groups that must pass (none: every group)."""
    return "--groups " + " ".join(shlex.quote(g) for g in groups) if groups else ""


def source_flags(source: Mapping[str, Any]) -> str:
    """``codedpo prepare`` flags of a problem source (a benchmark or a training source)."""
    flags = [f"--format {source['format']}"]
    if source["split"]:
        flags.append(f"--split {shlex.quote(source['split'])}")
    if source["prompt_template"]:
        flags.append(f"--prompt-template {shlex.quote(source['prompt_template'])}")
    if source["released_after"]:
        # applied before the subset: max_problems draws from the problems kept
        flags.append(f"--released-after {source['released_after']}")
    if source["max_problems"]:
        # the seed only matters when a subset is drawn
        flags.append(f"--max-problems {source['max_problems']} --seed {source['seed']}")
    return " ".join(flags)


def export_flags(sources: Iterable[Mapping[str, Any]], path: str) -> str:
    """``codedpo export-source`` flags for the training source whose file is ``path`` and that
    names the Hub dataset it comes from."""
    for source in sources:
        if source["path"] == path and source["hub"]:
            flags = [f"--hub {shlex.quote(source['hub'])}"]
            flags.append(f"--split {shlex.quote(source['hub_split'])}")
            if source["hub_revision"]:
                flags.append(f"--revision {shlex.quote(source['hub_revision'])}")
            return " ".join(flags)
    raise ValueError(f"no train_problems source with path {path!r} and a 'hub' to export it from")


def slice_flags(config: Mapping[str, Any]) -> str:
    """``codedpo slice-problems``: slices of a fixed size do not move when ``rounds`` changes
    (only new rounds run); without a size the pool is cut into ``rounds`` equal slices."""
    if config["rounds_slice_size"]:
        return f"--size {config['rounds_slice_size']}"
    return f"--rounds {config['rounds']}"


# -- generation ----------------------------------------------------------------------------------
def sampling_flags(sampling: Mapping[str, Any]) -> str:
    """``codedpo sample`` flags of the on-policy samples (``sampling``)."""
    s = sampling
    return (
        f"--num-shards {int(s['shards'])} --n {int(s['n'])} "
        f"--temperature {number(s['temperature'])} --top-p {number(s['top_p'])} "
        f"--max-new-tokens {int(s['max_new_tokens'])} --seed {int(s['seed'])}"
    )


def eval_flags(evaluation: Mapping[str, Any]) -> str:
    """``codedpo sample`` flags of the greedy evaluation (``eval``)."""
    e = evaluation
    return f"--max-new-tokens {int(e['max_new_tokens'])}"


def eval_sampling_flags(evaluation: Mapping[str, Any]) -> str:
    """``codedpo sample`` flags of the pass@k samples of a benchmark (``eval``)."""
    e = evaluation
    return (
        f"--n {int(e['samples_per_problem'])} --temperature {number(e['temperature'])} "
        f"--top-p {number(e['top_p'])} --max-new-tokens {int(e['max_new_tokens'])} "
        f"--seed {int(e['seed'])}"
    )


def generation_flags(backend: str, vllm: Mapping[str, Any]) -> str:
    """``codedpo sample`` flags of a generation backend and, for vLLM, its engine settings
    (``sampling.vllm``, which the eval stage uses too)."""
    if backend != "vllm":
        return "--backend hf"
    flags = [
        "--backend vllm",
        f"--tensor-parallel-size {vllm['tensor_parallel_size']}",
        f"--gpu-memory-utilization {number(vllm['gpu_memory_utilization'])}",
        (
            "--deterministic-scheduling"
            if vllm["deterministic_scheduling"]
            else "--no-deterministic-scheduling"
        ),
        "--batch-invariant" if vllm["batch_invariant"] else "--no-batch-invariant",
        "--enforce-eager" if vllm["enforce_eager"] else "--no-enforce-eager",
    ]
    if vllm["max_model_len"]:
        flags.append(f"--max-model-len {vllm['max_model_len']}")
    return " ".join(flags)


# -- pairs ---------------------------------------------------------------------------------------
def pairs_flags(pairs: Mapping[str, Any]) -> str:
    """``codedpo build-pairs`` flags of a chain's pair settings; settings equal to the command's
    defaults (random pairs by the fraction of tests passed, the paper's) are left out."""
    flags = (
        f"--seed {int(pairs['seed'])} --max-pairs-per-problem {int(pairs['max_pairs_per_problem'])}"
    )
    if pairs["strategy"] != PAIRS_CLI_DEFAULTS["strategy"]:
        flags += f" --strategy {pairs['strategy']}"
    if pairs["score"] != PAIRS_CLI_DEFAULTS["score"]:
        flags += f" --score {pairs['score']}"
    if pairs["rejected_verdicts"]:
        flags += " --rejected-verdict " + " ".join(pairs["rejected_verdicts"])
    return flags


# -- tables --------------------------------------------------------------------------------------
def released_after(config: Mapping[str, Any]) -> dict[str, str]:
    """The tables' benchmarks that keep only problems released after a date -> that date."""
    benchmarks = config["benchmarks"]
    return {name: benchmarks[name]["released_after"] for name in config["tables"]["benchmarks"]
            if benchmarks[name]["released_after"]}  # fmt: skip


def released_flags(config: Mapping[str, Any]) -> str:
    """``--released-after B=DATE ...`` of ``codedpo tables`` and ``table3`` (their note)."""
    dated = released_after(config)
    if not dated:
        return ""
    return "--released-after " + " ".join(shlex.quote(f"{n}={d}") for n, d in dated.items())


def paper_flags(config: Mapping[str, Any]) -> str:
    """``codedpo tables`` flags that put the paper's numbers beside ours: which hub id each
    policy is, and which of the paper's benchmarks (by format) each benchmark is; and which
    benchmarks keep only problems released after a date (``released_after``): no model can have
    seen them, nor did the paper evaluate them, so they get a note and no paper column."""
    tables = config["tables"]
    dated = released_after(config)
    released = released_flags(config)
    path = tables["paper_results"]
    if not path:
        return released if dated else ""
    # A demo policy has no hub id and gets no paper numbers, unless a config says which hub
    # model it stands in for (configs/rehearsal.yaml, to test the paper columns' wiring).
    stand_ins = tables["paper_stand_ins"] or {}
    for policy in stand_ins:
        if policy not in config["models"]:
            raise ValueError(
                f"config: field 'tables.paper_stand_ins.{policy}': not one of the models"
            )
    hub_ids = {
        policy: config["models"][policy].get("hub") or stand_ins.get(policy)
        for policy in tables["models"]
    }
    models = [f"{policy}={hub}" for policy, hub in hub_ids.items() if hub]
    benchmarks = [
        f"{name}={config['benchmarks'][name]['format']}"
        for name in tables["benchmarks"]
        if name not in dated
    ]
    flags = [f"--paper {shlex.quote(path)}"]
    if models:
        flags.append("--model-ids " + " ".join(shlex.quote(m) for m in models))
    if benchmarks:
        flags.append("--benchmark-ids " + " ".join(shlex.quote(b) for b in benchmarks))
    if dated:
        flags.append(released)
    return " ".join(flags)


def off_policy_flags(runs: Iterable[tuple[str, str]], bootstrap: Mapping[str, Any]) -> str:
    """``codedpo tables`` flags for Table 2's off-policy rows (``policy=pairs_from``) and the
    bootstrap's settings (``tables.bootstrap``)."""
    flags = ["--off-policy " + " ".join(shlex.quote(f"{p}={src}") for p, src in runs)]
    flags.append(f"--bootstrap-resamples {int(bootstrap['resamples'])}")
    flags.append(f"--bootstrap-seed {int(bootstrap['seed'])}")
    flags.append(f"--confidence {number(bootstrap['confidence'])}")
    return " ".join(flags)
