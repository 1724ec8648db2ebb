"""The workflow configuration, checked while Snakemake parses the workflow (so ``snakemake -n``
catches it), with errors of one or two lines naming the user's config file, the key path and the
bad value, and the nearest valid key where one was misspelled.

``check(config, schema, layers)`` drops the null entries a later config file uses to remove a
model, benchmark, arm or training source, fills the schema's defaults into the merged config (the
schema is the only home of the config's defaults: the rules and :mod:`codedpo.workflow.jobs` read
every key without one of their own), then checks, in order:

1. the closed schema (``schemas/config.schema.yaml``: every object lists its keys, values have
   ranges);
2. names that must exist: ``tables.models`` / ``tables.benchmarks`` entries, demo-model fields
   (``codedpo.models.demo.DemoModelArgs``);
3. files: every path in the config exists, or a rule makes it (a pinned benchmark download under
   ``resources/benchmarks/``, a training source exported from the Hub);
4. training: recipe keys and ``dpo.overrides`` / ``rft.overrides`` against the fields
   ``codedpo.training.train`` accepts (``codedpo.training.fields``), with their value kinds and
   ranges, and ``effective_batch_size`` against the batch size and process count; the same for
   every DPO recipe of ``dpo.recipes`` and of the arms, and each arm's overrides;
5. online RL (``grpo``, :mod:`codedpo.workflow.online`): GRPO arm names, recipes and overrides
   against TRL's ``GRPOConfig``, as in 4;
6. rounds and arms: arm and recipe names that paths and tables can tell apart, pair settings
   that fit together (``by_error`` needs ``rejected_verdicts``), ``eval.pass_at_k`` within
   ``eval.samples_per_problem``.

It also makes the config canonical, so that spelling does not change what the rules compare:
paths are normalized (``./configs/x.yaml`` is ``configs/x.yaml``) and override values take their
field's type (``1e-4`` written as a YAML string is the float 0.0001).

``layers`` are the config files as the user wrote them, lowest precedence first (``config.yaml``,
then each ``--configfile``, then ``--config``): an error names the last one that sets the key.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from codedpo.io import InputError
from codedpo.training.fields import FieldError, coerce, dataclass_fields, train_fields
from codedpo.workflow.chains import DEFAULT_ARM, Chain, chains
from codedpo.workflow.messages import (  # noqa: F401 (the names callers import from here)
    NAME,
    ConfigError,
    Layer,
    _get,
    _hint,
    error,
    location,
    nearest,
    source_of,
)
from codedpo.workflow.online import check_grpo
from codedpo.workflow.recipes import Checked, check_training

# Keys holding file paths (``*`` is any name), normalized and checked for existence.
PATH_KEYS = [
    ("benchmarks", "*", "path"),
    ("benchmarks", "*", "prompt_template"),
    ("train_problems", "sources", "*", "path"),
    ("train_problems", "sources", "*", "prompt_template"),
    ("dpo", "recipe"),
    ("dpo", "recipes", "*"),
    ("arms", "*", "dpo", "recipe"),
    ("grpo", "arms", "*", "recipe"),
    ("rft", "recipe"),
    ("training", "accelerate_config"),
    ("demo_problems",),
    ("tables", "paper_results"),
    ("execution", "apptainer_image"),
]
BENCHMARK_DOWNLOADS = "resources/benchmarks/"
TRAIN_EXPORTS = "resources/train_sources/"
# Demo-model fields the rule sets itself (rules/models.smk).
DEMO_SET_BY_WORKFLOW = {"threads": "training.threads", "progress": "the rule (--no-progress)"}


# -- 0. null entries -----------------------------------------------------------------------------
# Mappings of named entries where a later config file may remove one that an earlier file set:
# --configfile merges into config.yaml, and configs/paper.yaml drops the demo's models this way.
NULLABLE_ENTRIES = [("models",), ("benchmarks",), ("arms",), ("grpo", "arms"),
                    ("train_problems", "sources")]  # fmt: skip


def drop_null_entries(config: dict) -> None:
    """Remove the null entries of :data:`NULLABLE_ENTRIES` (before the schema sees them)."""
    for path in NULLABLE_ENTRIES:
        found, entries = _get(config, path)
        if found and isinstance(entries, dict):
            _set(config, path, {k: v for k, v in entries.items() if v is not None})


# -- 1. the schema -------------------------------------------------------------------------------
def fill_defaults(instance: Any, schema: dict) -> None:
    """Set every absent property that has a ``default`` in the schema, recursively."""
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in properties:
                fill_defaults(value, extra)


_ORDER = {"additionalProperties": 0, "type": 1, "enum": 1, "required": 2, "oneOf": 3}
_TYPES = {"integer": "an integer", "number": "a number", "string": "a string",
          "boolean": "true or false", "object": "a mapping", "array": "a list",
          "null": "null"}  # fmt: skip


def _schema_message(err: jsonschema.ValidationError, layers: Sequence[Layer]) -> ConfigError:
    path = list(err.absolute_path)
    kind, value, schema = err.validator, err.instance, err.schema
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        key = next(k for k in value if k not in allowed)
        return error(layers, [*path, key], "unknown key" + _hint(key, allowed))
    if kind == "type":
        wanted = err.validator_value
        wanted = [wanted] if isinstance(wanted, str) else wanted
        return error(layers, path, f"{value!r} is not " + " or ".join(_TYPES[w] for w in wanted))
    if kind == "enum":
        options = err.validator_value
        near = nearest(value, options)
        return error(
            layers,
            path,
            f"{value!r} is not one of {', '.join(map(str, options))}"
            + (f" (did you mean '{near}'?)" if near else ""),
        )
    ops = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if kind in ops:
        return error(layers, path, f"{value!r} must be {ops[kind]} {err.validator_value}")
    if kind == "required":
        missing = next(k for k in err.validator_value if k not in value)
        return error(layers, path, f"missing key '{missing}'")
    if kind == "minProperties":
        return error(layers, path, "needs at least one entry")
    if kind == "oneOf" and all("required" in s for s in err.validator_value):
        keys = " or ".join(f"'{s['required'][0]}'" for s in err.validator_value)
        return error(layers, path, f"give exactly one of {keys}")
    return error(layers, path, err.message)


def check_schema(config: dict, schema: dict, layers: Sequence[Layer]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(config),
        key=lambda e: (_ORDER.get(e.validator, 4), len(e.absolute_path), location(e.path)),
    )
    if errors:
        raise _schema_message(errors[0], layers)


# -- 2. names ------------------------------------------------------------------------------------
def check_names(config: dict, layers: Sequence[Layer]) -> None:
    for key, section in (("models", "models"), ("benchmarks", "benchmarks")):
        defined = list(config[section])
        for i, name in enumerate(config["tables"][key]):
            if name not in defined:
                near = nearest(name, defined)
                raise error(
                    layers,
                    ["tables", key, i],
                    f"{name!r} is not defined in {section} (defined: {', '.join(defined)})"
                    + (f"; did you mean '{near}'?" if near else ""),
                )
    from codedpo.models.demo import DemoModelArgs

    fields = dataclass_fields(DemoModelArgs)
    for policy, model in config["models"].items():
        for key, value in (model.get("demo") or {}).items():
            path = ["models", policy, "demo", key]
            if key in DEMO_SET_BY_WORKFLOW:
                raise error(layers, path, f"set by the workflow: use {DEMO_SET_BY_WORKFLOW[key]}")
            if key not in fields:
                allowed = [f for f in fields if f not in DEMO_SET_BY_WORKFLOW]
                raise error(layers, path, "unknown key" + _hint(key, allowed))
            try:
                model["demo"][key] = coerce(key, value, fields[key])
            except FieldError as exc:
                raise error(layers, path, str(exc)) from None


# -- 3. files ------------------------------------------------------------------------------------
def _paths(config: dict):
    """``(key path, value)`` of every path in the config, ``*`` expanded."""

    def walk(data, pattern, prefix):
        if not pattern:
            yield prefix, data
            return
        head, rest = pattern[0], pattern[1:]
        if isinstance(data, list) and head == "*":
            keys = list(range(len(data)))
        elif not isinstance(data, dict):
            return
        else:
            keys = list(data) if head == "*" else [head] if head in data else []
        for key in keys:
            yield from walk(data[key], rest, [*prefix, key])

    for pattern in PATH_KEYS:
        for path, value in walk(config, pattern, []):
            if isinstance(value, str) and value:
                yield path, value


def _set(config: dict, path: Sequence, value: Any) -> None:
    for part in path[:-1]:
        config = config[part]
    config[path[-1]] = value


# The folders the workflow writes below an experiment's results folder.
OUTPUT_KINDS = ("analysis", "budget", "checkpoints", "eval", "executions", "logs", "models",
                "pairs", "plots", "problems", "samples", "tables", "benchmarks")  # fmt: skip


def check_results(config: dict, layers: Sequence[Layer]) -> None:
    """An experiment's folder may not lie inside another experiment's outputs (``results/eval``
    is the demo's evaluations) nor hold the workflow's own files."""
    folder = os.path.normpath(config["results"])
    parts = Path(folder).parts
    inside = [p for p in parts[1:] if p in OUTPUT_KINDS]
    if inside or folder in (".", "..") or parts[0] in ("src", "configs", "rules", "resources"):
        raise error(
            layers,
            ["results"],
            f"{config['results']!r} lies inside another experiment's outputs or the workflow's "
            "own files: name a folder of its own, e.g. results/<experiment>",
        )
    config["results"] = folder


def check_release_dates(config: dict, layers: Sequence[Layer]) -> None:
    """``released_after`` on a format whose records carry no release date keeps nothing: an
    error now, not in the prepare job."""
    from codedpo.problems.released import DATED_FORMATS, iso_date

    entries = [(["benchmarks", n], b) for n, b in config["benchmarks"].items()]
    entries += [(["train_problems", "sources", n], s)
                for n, s in config["train_problems"]["sources"].items()]  # fmt: skip
    for path, entry in entries:
        date = entry.get("released_after")
        if not date:
            continue
        try:
            iso_date(date, "")
        except InputError:
            message = f"{date!r} is not a date YYYY-MM-DD"
            raise error(layers, [*path, "released_after"], message) from None
        if entry["format"] not in DATED_FORMATS:
            raise error(
                layers,
                [*path, "released_after"],
                f"format {entry['format']} carries no release dates (dated formats: "
                + ", ".join(f"{f} ({why})" for f, why in DATED_FORMATS.items())
                + ")",
            )


def normalize_paths(config: dict) -> None:
    for path, value in list(_paths(config)):
        if "://" not in value:
            _set(config, path, os.path.normpath(value))


def _produced_by(path: str, config: dict, downloads: Sequence[str]) -> str | None:
    """The rule that writes ``path`` when it is missing, if one does."""
    if path.startswith(BENCHMARK_DOWNLOADS) and path[len(BENCHMARK_DOWNLOADS) :] in downloads:
        return "download_benchmark"
    sources = config["train_problems"]["sources"].values()
    if path.startswith(TRAIN_EXPORTS) and any(s["path"] == path and s["hub"] for s in sources):
        return "export_train_source"
    return None


def check_files(config: dict, layers: Sequence[Layer], root: Path) -> None:
    from codedpo.problems.download import SOURCES

    uses_demo = any("demo" in m for m in config["models"].values())
    for path, value in _paths(config):
        if path == ["demo_problems"] and not uses_demo:
            continue
        if path == ["execution", "apptainer_image"] and config["execution"]["backend"] != (
            "apptainer"
        ):
            continue
        if (root / value).exists() or _produced_by(value, config, list(SOURCES)):
            continue
        what = f"{value}: file not found"
        if value.startswith(BENCHMARK_DOWNLOADS):
            what += f" (codedpo download fetches only {', '.join(sorted(SOURCES))})"
        elif value.startswith(TRAIN_EXPORTS):
            what += " (give the source a 'hub' dataset id to export it, or copy the file in)"
        raise error(layers, path, what)


# -- 5. rounds and arms --------------------------------------------------------------------------


def check_rounds(config: dict, layers: Sequence[Layer]) -> list[Chain]:
    """Arm and recipe names, each chain's pair settings, and pass@k; returns the chains."""
    for arm in config["arms"] or {}:
        if arm == DEFAULT_ARM:
            raise error(
                layers,
                ["arms", arm],
                f"'{DEFAULT_ARM}' is the default arm (the "
                "top-level pairs and dpo): give this arm another name",
            )
        if not NAME.match(arm):
            raise error(
                layers,
                ["arms", arm],
                "an arm's name is letters, digits, '_', '.', '-' (it names directories)",
            )
    found = chains(config)
    seen: dict[str, tuple] = {}
    for chain in found:
        if not NAME.match(chain.recipe):
            raise error(
                layers,
                list(chain.where),
                f"{chain.recipe_path}: the recipe's name "
                f"{chain.recipe!r} (its file's stem) must be letters, digits, '_', '.', "
                "'-'",
            )
        if chain.arm == DEFAULT_ARM:
            if chain.recipe in seen:
                raise error(
                    layers,
                    list(chain.where),
                    f"{chain.recipe_path}: the recipe name "
                    f"{chain.recipe!r} is taken by {location(seen[chain.recipe])}",
                )
            seen[chain.recipe] = chain.where
        pairs_key = ["pairs"] if chain.arm == DEFAULT_ARM else ["arms", chain.arm, "pairs"]
        if chain.pairs["strategy"] == "by_error" and not chain.pairs["rejected_verdicts"]:
            raise error(
                layers,
                [*pairs_key, "strategy"],
                "by_error draws the rejected response "
                "from rejected_verdicts: set pairs.rejected_verdicts (e.g. [failed])",
            )
    e = config["eval"]
    if e["samples_per_problem"]:
        for i, k in enumerate(e["pass_at_k"]):
            if k > e["samples_per_problem"]:
                raise error(
                    layers,
                    ["eval", "pass_at_k", i],
                    f"pass@{k} needs at least {k} "
                    f"samples per problem; eval.samples_per_problem is "
                    f"{e['samples_per_problem']}",
                )
    return found


# -- all of it -----------------------------------------------------------------------------------
def check(
    config: dict,
    schema: dict,
    layers: Sequence[Layer],
    *,
    root: Path | None = None,
    fields_for: Callable[[str], dict[str, dict]] = train_fields,
) -> Checked:
    """Drop null entries, fill defaults, check everything, canonicalize; raises
    :class:`ConfigError`."""
    drop_null_entries(config)
    fill_defaults(config, schema)
    check_schema(config, schema, layers)
    normalize_paths(config)
    check_names(config, layers)
    check_results(config, layers)
    check_release_dates(config, layers)
    check_files(config, layers, root or Path.cwd())
    check_rounds(config, layers)
    checked = check_training(config, layers, fields_for, root)
    checked.chains = chains(config)  # after the checks: the overrides are typed
    checked.grpo_recipes = check_grpo(config, layers, fields_for, root or Path.cwd())
    return checked


def load_schema(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
