"""What ``codedpo train`` accepts: the fields of our :class:`ScriptArguments` and of TRL's
``DPOConfig``, ``SFTConfig`` or ``GRPOConfig`` (:data:`CONFIGS`), with the kinds of value each
takes, for checking recipes and ``dpo.overrides`` / ``rft.overrides`` during ``snakemake -n``.

Importing TRL takes seconds, so the field table is computed once per installed (trl,
transformers) pair and cached under ``$XDG_CACHE_HOME/codedpo/`` (default ``~/.cache``); a cache
that cannot be written is only a slower dry run.

A field's kinds come from its type hint: ``bool``, ``int``, ``float``, ``str``, ``list``,
``dict``, ``null``; an enum (``SchedulerType``, ``OptimizerNames``, a ``Literal``) adds
``choices``, which a string must be one of (transformers converts it and raises otherwise).

Two fields get more than their type hint says:

- DPO's ``loss_type`` (``list[str]``) has ``item_choices``: the loss names TRL's ``DPOConfig``
  documents (its help text lists them; TRL itself checks the names only inside the first training
  step). A single name is taken as a one-item list, as ``DPOConfig`` does.
- ``peft`` (our ``ScriptArguments``) has ``keys``: the fields of PEFT's ``LoraConfig`` a recipe
  may set (:data:`LORA_SET_BY_US` excluded) and ``merge``, each checked like a field.
- ``rewards`` (ours, GRPO) has ``item_choices``: :data:`codedpo.execution.reward.KINDS`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

METHODS = ("dpo", "rft", "grpo")
# Each method's TRL config class.
CONFIGS = {"dpo": "DPOConfig", "rft": "SFTConfig", "grpo": "GRPOConfig"}
# Our fields that only grpo reads, with their defaults (any other method refuses another value).
GRPO_DEFAULTS: dict[str, Any] = {"rewards": ["pass_all"], "reward_workers": None,
                                 "execution": None, "expected_file": None,
                                 "max_responses": None, "responses_per_problem": None}  # fmt: skip


@dataclass
class ScriptArguments:
    """Our arguments; everything else is a field of the method's TRL config (:data:`CONFIGS`)."""

    method: str = field(
        default="dpo", metadata={"help": "dpo (pairs), rft (SFT on chosen responses), grpo (RL)"}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "policy to start from: a model directory or a Hub id"}
    )
    train_file: str | None = field(
        default=None, metadata={"help": "pairs (dpo), RFT examples (rft), problems (grpo)"}
    )
    effective_batch_size: int | None = field(
        default=16,
        metadata={
            "help": "examples (grpo: completions) per optimizer step over all processes; sets "
            "gradient_accumulation_steps from per_device_train_batch_size and the number of "
            "processes (null: leave gradient_accumulation_steps as given)"
        },
    )
    threads: int = field(
        default=1,
        metadata={
            "help": "torch CPU threads per process (more than the free cores is much slower)"
        },
    )
    ref_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "dpo: the reference model (a model or adapter directory or a Hub id); "
            "default: the starting model (TRL's default)"
        },
    )
    peft: dict | str | None = field(
        default=None,
        metadata={
            "help": "LoRA through PEFT: peft.LoraConfig fields (r, lora_alpha, lora_dropout, "
            "target_modules, ...) and merge (true: save the merged full model; false: save the "
            "adapter); a mapping in the recipe, a JSON object on the command line; null: train "
            "every weight"
        },
    )
    rewards: list[str] = field(
        default_factory=lambda: list(GRPO_DEFAULTS["rewards"]),
        metadata={"help": "grpo: reward kinds (pass_all, fraction, rule), one function each"},
    )
    reward_workers: int | None = field(
        default=None, metadata={"help": "grpo: sandboxes per process (default: its CPU share)"}
    )
    execution: dict | str | None = field(
        default=None,
        metadata={
            "help": "grpo: the executor's settings (config.yaml's execution keys: backend, "
            "memory_mb, test_seconds, runtime, ...), a mapping in the recipe, a JSON object on the "
            "command line; null: codedpo.execution.reward.default_config"
        },
    )
    expected_file: str | None = field(
        default=None,
        metadata={"help": "grpo: the problems' expected outputs (codedpo execute --expected-only)"},
    )
    max_responses: int | None = field(
        default=None,
        metadata={"help": "grpo: the budget in generated responses (sets max_steps)"},
    )
    responses_per_problem: float | None = field(
        default=None,
        metadata={
            "help": "grpo: the budget per training problem (DPO's, K rounds of n samples: n x K); "
            "sets max_steps"
        },
    )


# Bumped when the cached table's layout changes.
FORMAT = 2
# LoraConfig fields codedpo.training.train sets itself (a causal LM, trained, on the given base).
LORA_SET_BY_US = (
    "task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path",
    "revision", "inference_mode",
)  # fmt: skip
# Our own key of the peft mapping: save the adapter merged into a full model, or the adapter.
MERGE = {"kinds": ["bool"], "default": False}
# Set by the workflow on the command line (rules/train.smk): an override would contradict it.
SET_BY_WORKFLOW = {
    "method": "the rule (train_dpo or train_rft)",
    "model_name_or_path": "models.<policy>",
    "train_file": "the pairs the workflow builds",
    "output_dir": "the rule's output",
    "threads": "training.threads",
    "ref_model_name_or_path": "rounds_reference (iterative rounds)",
}
# Ranges TRL does not check itself; a value outside them trains nonsense or fails late.
RANGES: dict[str, tuple[str, float]] = {
    "beta": (">", 0),
    "learning_rate": (">", 0),
    "num_train_epochs": (">", 0),
    "max_length": (">=", 1),
    "max_prompt_length": (">=", 1),
    "per_device_train_batch_size": (">=", 1),
    "gradient_accumulation_steps": (">=", 1),
    "effective_batch_size": (">=", 1),
    "warmup_steps": (">=", 0),
    "warmup_ratio": (">=", 0),
    "weight_decay": (">=", 0),
    "max_grad_norm": (">=", 0),
    "label_smoothing": (">=", 0),
    "logging_steps": (">", 0),
    "num_generations": (">=", 2),  # GRPO's advantage compares completions of one prompt
    "max_completion_length": (">=", 1),
    "reward_workers": (">=", 1),
}
# GRPO's KL coefficient may be 0: no KL term (TRL's default).
GRPO_BETA = (">=", 0)


class FieldError(ValueError):
    """A recipe or override key or value that ``codedpo.training.train`` would reject."""


def _kinds(hint: Any) -> tuple[set[str], list[str]]:
    kinds: set[str] = set()
    choices: list[str] = []
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            k, c = _kinds(arg)
            kinds |= k
            choices += c
    elif origin is typing.Literal:
        kinds.add("str")
        choices += [str(a) for a in typing.get_args(hint)]
    elif hint is type(None):
        kinds.add("null")
    elif hint is bool:
        kinds.add("bool")
    elif hint is int:
        kinds.add("int")
    elif hint is float:
        kinds.add("float")
    elif hint is str:
        kinds.add("str")
    elif hint in (list, tuple) or origin in (list, tuple):
        kinds.add("list")
    elif hint is dict or origin is dict:
        kinds.add("dict")
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        kinds.add("str")
        choices += [str(m.value) for m in hint]
    else:
        kinds.add("any")
    return kinds, choices


def dataclass_fields(cls: type) -> dict[str, dict]:
    """``{name: {"kinds": [...], "choices": [...]}}`` of a dataclass's init fields."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kinds, choices = _kinds(hints.get(f.name, Any))
        spec: dict[str, Any] = {"kinds": sorted(kinds)}
        if choices and "any" not in kinds:
            spec["choices"] = sorted(set(choices))
        listed = f.metadata.get("choices") if isinstance(f.metadata, typing.Mapping) else None
        if listed and "choices" not in spec and kinds == {"str"}:
            spec["choices"] = sorted(str(c) for c in listed)
        if isinstance(f.default, (bool, int, float, str, type(None))):
            spec["default"] = f.default
        out[f.name] = spec
    return out


def dpo_loss_types() -> list[str]:
    """The loss names TRL's ``DPOConfig.loss_type`` help lists (``'sigmoid'``, ``'ipo'`` ...)."""
    from trl import DPOConfig

    help_text = {f.name: f for f in dataclasses.fields(DPOConfig)}["loss_type"].metadata["help"]
    names = re.findall(r"`'(\w+)'`", help_text.split("If multiple")[0])
    if "sigmoid" not in names:  # TRL reworded its help: fail here, not with a wrong check
        raise RuntimeError(f"cannot read the loss names from DPOConfig's help: {help_text!r}")
    return names


def lora_fields() -> dict[str, dict]:
    """The keys of a recipe's ``peft`` mapping: ``LoraConfig`` fields and ``merge``."""
    from peft import LoraConfig

    fields = dataclass_fields(LoraConfig)
    for name in LORA_SET_BY_US:
        fields.pop(name, None)
    return {**fields, "merge": dict(MERGE)}


def _versions() -> dict[str, str]:
    found = {}
    for package in ("trl", "transformers", "peft"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codedpo"


def trl_fields(cache_dir: Path | None = None) -> dict[str, dict[str, dict]]:
    """``{method: fields of its TRL config, "lora": ...}``, cached per TRL version."""
    versions = _versions()
    key = hashlib.sha256(json.dumps([FORMAT, versions], sort_keys=True).encode()).hexdigest()
    path = (cache_dir or _cache_dir()) / f"trl-fields-{key[:16]}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("versions") == versions and set(METHODS) <= set(cached["fields"]):
            return cached["fields"]
    except (OSError, ValueError, KeyError):
        pass
    from trl import DPOConfig, GRPOConfig, SFTConfig

    fields = {"dpo": dataclass_fields(DPOConfig), "rft": dataclass_fields(SFTConfig),
              "grpo": dataclass_fields(GRPOConfig)}  # fmt: skip
    fields["dpo"]["loss_type"]["item_choices"] = dpo_loss_types()
    fields["lora"] = lora_fields()
    try:
        from codedpo.io import write_json

        write_json(path, {"versions": versions, "fields": fields})
    except OSError:
        pass  # read-only home: check without a cache
    return fields


def train_fields(method: str, cache_dir: Path | None = None) -> dict[str, dict]:
    """Every key ``codedpo train --method METHOD`` accepts: ScriptArguments + TRL's
    config."""
    from codedpo.execution.reward import KINDS

    table = trl_fields(cache_dir)
    ours = dataclass_fields(ScriptArguments)
    ours["peft"]["keys"] = table["lora"]
    ours["rewards"]["item_choices"] = list(KINDS)
    return {**table[method], **ours}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def coerce(key: str, value: Any, spec: dict) -> Any:
    """``value`` as the field takes it (an int for an int field, 1e-4 written as a string by
    YAML as a float); a value of the wrong kind is a :class:`FieldError`."""
    kinds, choices = set(spec["kinds"]), spec.get("choices")
    if "item_choices" in spec and isinstance(value, (str, list, tuple)):
        items = [value] if isinstance(value, str) else list(value)
        for item in items:
            _one_of(item, spec["item_choices"])
        return items
    if "keys" in spec and isinstance(value, dict):
        return _mapping(value, spec["keys"])
    if "any" in kinds:
        return value
    if value is None:
        if "null" in kinds:
            return None
    elif isinstance(value, bool):
        if "bool" in kinds:
            return value
    elif isinstance(value, int):
        if "int" in kinds:
            return value
        if "float" in kinds:
            return float(value)
    elif isinstance(value, float):
        if "float" in kinds:
            return value
        if "int" in kinds and value.is_integer():
            return int(value)
    elif isinstance(value, str):
        if choices and value in choices:
            return value
        if "str" in kinds and not choices:
            return value
        number = _number(value)
        if number is not None and "float" in kinds:
            return number
        if number is not None and "int" in kinds and number.is_integer():
            return int(number)
        if "bool" in kinds and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if choices:
            _one_of(value, choices)
    elif isinstance(value, (list, tuple)):
        if "list" in kinds:
            return list(value)
    elif isinstance(value, dict):
        if "dict" in kinds:
            return value
    wanted = " or ".join(sorted(kinds - {"null"}) + (["null"] if "null" in kinds else []))
    raise FieldError(f"{value!r} is not {wanted}")


def _one_of(value: Any, choices: list[str]) -> None:
    if isinstance(value, str) and value in choices:
        return
    import difflib

    near = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise FieldError(f"{value!r} is not one of {', '.join(choices)}{hint}")


def _mapping(value: dict, keys: dict[str, dict]) -> dict:
    """A nested mapping (``peft``) checked key by key: ``"r: 'x' is not int"``."""
    import difflib

    out = {}
    for key, item in value.items():
        if key not in keys:
            near = difflib.get_close_matches(str(key), list(keys), n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise FieldError(f"unknown key {key!r}{hint}")
        try:
            out[key] = coerce(key, item, keys[key])
        except FieldError as exc:
            raise FieldError(f"{key}: {exc}") from None
    return out


def check_losses(loss_type: Any, loss_weights: Any) -> None:
    """``loss_weights``, when given, has one weight per loss (DPOConfig raises only at parse)."""
    if loss_weights is None:
        return
    count = 1 if isinstance(loss_type, str) else len(loss_type or [])
    if len(loss_weights) != count:
        raise FieldError(
            f"{len(loss_weights)} weights for {count} loss types {loss_type!r}: "
            "loss_weights needs one weight per loss_type"
        )


def check_range(key: str, value: Any, method: str | None = None) -> None:
    if key not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    op, limit = GRPO_BETA if (method, key) == ("grpo", "beta") else RANGES[key]
    if (op == ">" and not value > limit) or (op == ">=" and not value >= limit):
        raise FieldError(f"{value!r} must be {op} {limit:g}")


def check_recipe(path: str, recipe: dict, method: str) -> None:
    """Every key of the recipe is a field ``method`` accepts, with a value of its kind (DPO loss
    names TRL has, a ``peft`` mapping of LoraConfig fields); the error names the file and field.
    ``codedpo.training.train`` runs this before anything loads (InputError)."""
    import difflib

    from codedpo.io import InputError

    fields = train_fields(method)
    config = CONFIGS[method]
    for key, value in recipe.items():
        if key == "env":  # TRL's parser sets these environment variables
            continue
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise InputError(
                f"{path}: field '{key}': unknown (not a field of ScriptArguments or TRL's "
                f"{config}){hint}"
            )
        try:
            check_range(key, coerce(key, value, fields[key]), method)
        except FieldError as exc:
            raise InputError(f"{path}: field '{key}': {exc}") from None
    if method == "dpo":
        try:
            check_losses(recipe.get("loss_type", ["sigmoid"]), recipe.get("loss_weights"))
        except FieldError as exc:
            raise InputError(f"{path}: field 'loss_weights': {exc}") from None


def check_arguments(script_args, training_args) -> None:
    """The parsed values (the recipe's, or the command line's over them), checked as the recipe
    is; ``peft`` given as JSON on the command line becomes a mapping."""
    from codedpo.io import InputError
    fields = train_fields(script_args.method)
    where = "--peft (or the recipe's peft)"
    try:
        if isinstance(script_args.peft, str):
            where = "--peft"
            try:
                script_args.peft = json.loads(script_args.peft)
            except ValueError as exc:
                raise FieldError(f"not a JSON object ({exc})") from None
        if script_args.peft is not None:
            if not isinstance(script_args.peft, dict):
                raise FieldError(f"{script_args.peft!r} is not a mapping of LoraConfig fields")
            script_args.peft = coerce("peft", script_args.peft, fields["peft"])
        if script_args.method == "dpo":
            where = "--loss_type"
            training_args.loss_type = coerce(
                "loss_type", training_args.loss_type, fields["loss_type"]
            )
            where = "--loss_weights"
            check_losses(training_args.loss_type, training_args.loss_weights)
        if script_args.method == "grpo":
            where = "--rewards"
            script_args.rewards = coerce("rewards", script_args.rewards, fields["rewards"])
            where = "--execution"
            if isinstance(script_args.execution, str):
                try:
                    script_args.execution = json.loads(script_args.execution)
                except ValueError as exc:
                    raise FieldError(f"not a JSON object ({exc})") from None
            if script_args.execution is not None and not isinstance(script_args.execution, dict):
                raise FieldError(f"{script_args.execution!r} is not a mapping of settings")
    except FieldError as exc:
        raise InputError(f"{where}: {exc}") from None
    from codedpo.training.tracking import missing

    if missing(training_args.report_to):
        raise InputError(f"--report_to: {', '.join(missing(training_args.report_to))}: not "
                         "installed (tensorboard: pip install -e '.[tracking]')")  # fmt: skip
    if script_args.ref_model_name_or_path and script_args.method != "dpo":
        raise InputError("--ref_model_name_or_path: only dpo has a reference model")
    if script_args.method == "grpo":
        from codedpo.training import grpo

        grpo.check_arguments(script_args, training_args)
    for name, default in GRPO_DEFAULTS.items():
        if script_args.method != "grpo" and getattr(script_args, name) != default:
            raise InputError(f"--{name}: only grpo has reward functions")
