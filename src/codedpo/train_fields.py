"""What ``codedpo.train`` accepts: the fields of our ``ScriptArguments`` and of TRL's ``DPOConfig``
(DPO) or ``SFTConfig`` (RFT), with the kinds of value each takes, for checking recipes and
``dpo.overrides`` / ``rft.overrides`` during ``snakemake -n`` instead of inside the job.

Importing TRL takes seconds, so the field table is computed once per installed (trl,
transformers) pair and cached under ``$XDG_CACHE_HOME/codedpo/`` (default ``~/.cache``); a cache
that cannot be written is only a slower dry run.

A field's kinds come from its type hint: ``bool``, ``int``, ``float``, ``str``, ``list``,
``dict``, ``null``; an enum (``SchedulerType``, ``OptimizerNames``, a ``Literal``) adds
``choices``, which a string must be one of (transformers converts it and raises otherwise).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import types
import typing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Bumped when the cached table's layout changes.
FORMAT = 1
# Set by the workflow on the command line (rules/train.smk): an override would contradict it.
SET_BY_WORKFLOW = {
    "method": "the rule (train_dpo or train_rft)",
    "model_name_or_path": "models.<policy>",
    "train_file": "the pairs the workflow builds",
    "output_dir": "the rule's output",
    "threads": "training.threads",
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
}


class FieldError(ValueError):
    """A recipe or override key or value that ``codedpo.train`` would reject."""


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
        if isinstance(f.default, (bool, int, float, str, type(None))):
            spec["default"] = f.default
        out[f.name] = spec
    return out


def _versions() -> dict[str, str]:
    found = {}
    for package in ("trl", "transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codedpo"


def trl_fields(cache_dir: Path | None = None) -> dict[str, dict[str, dict]]:
    """``{"dpo": fields of DPOConfig, "rft": fields of SFTConfig}``, cached per TRL version."""
    versions = _versions()
    key = hashlib.sha256(json.dumps([FORMAT, versions], sort_keys=True).encode()).hexdigest()
    path = (cache_dir or _cache_dir()) / f"trl-fields-{key[:16]}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("versions") == versions:
            return cached["fields"]
    except (OSError, ValueError, KeyError):
        pass
    from trl import DPOConfig, SFTConfig

    fields = {"dpo": dataclass_fields(DPOConfig), "rft": dataclass_fields(SFTConfig)}
    try:
        from codedpo.io import write_json

        write_json(path, {"versions": versions, "fields": fields})
    except OSError:
        pass  # read-only home: check without a cache
    return fields


def train_fields(method: str, cache_dir: Path | None = None) -> dict[str, dict]:
    """Every key ``codedpo.train --method METHOD`` accepts: ScriptArguments + TRL's config."""
    from codedpo.train import ScriptArguments

    return {**trl_fields(cache_dir)[method], **dataclass_fields(ScriptArguments)}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def coerce(key: str, value: Any, spec: dict) -> Any:
    """``value`` as the field takes it (an int for an int field, 1e-4 written as a string by
    YAML as a float); a value of the wrong kind is a :class:`FieldError`."""
    kinds, choices = set(spec["kinds"]), spec.get("choices")
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
            import difflib

            near = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise FieldError(f"{value!r} is not one of {', '.join(choices)}{hint}")
    elif isinstance(value, (list, tuple)):
        if "list" in kinds:
            return list(value)
    elif isinstance(value, dict):
        if "dict" in kinds:
            return value
    wanted = " or ".join(sorted(kinds - {"null"}) + (["null"] if "null" in kinds else []))
    raise FieldError(f"{value!r} is not {wanted}")


def check_range(key: str, value: Any) -> None:
    if key not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    op, limit = RANGES[key]
    if (op == ">" and not value > limit) or (op == ">=" and not value >= limit):
        raise FieldError(f"{value!r} must be {op} {limit:g}")
