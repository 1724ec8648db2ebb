"""Training recipes in the config, checked at the dry run: recipe keys and overrides against the
fields ``codedpo train`` accepts (:mod:`codedpo.training.fields`), with their kinds and ranges,
and ``effective_batch_size`` against the batch size and process count, for RFT, DPO (every recipe
of every chain) and GRPO (:mod:`codedpo.workflow.online`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from codedpo.training.fields import SET_BY_WORKFLOW, FieldError, check_range, coerce, train_fields
from codedpo.workflow.chains import DEFAULT_ARM, Chain, chains
from codedpo.workflow.messages import ConfigError, Layer, _get, _hint, error, source_of


@dataclass
class Checked:
    """What the checks computed that the rules use: each method's recipe, typed, every DPO
    recipe by its path, and the chains of rounds (codedpo.workflow.chains)."""

    recipes: dict[str, dict] = field(default_factory=dict)
    dpo_recipes: dict[str, dict] = field(default_factory=dict)
    chains: list[Chain] = field(default_factory=list)
    grpo_recipes: dict[str, dict] = field(default_factory=dict)  # codedpo.workflow.online


def _load_recipe(path: str, layers: Sequence[Layer], key: list, root: Path) -> dict:
    try:
        with open(root / path, encoding="utf-8") as fh:
            recipe = yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(layers, key, f"{path}: cannot read the recipe ({exc})") from None
    if not isinstance(recipe, dict):
        raise error(layers, key, f"{path}: a recipe is a mapping of field: value")
    return recipe


def _check_recipe(path: str, method: str, fields: dict, layers, key: list, root: Path) -> dict:
    recipe = _load_recipe(path, layers, key, root)
    for name, value in recipe.items():
        where = f"{path}: {name}"
        if name == "method":
            if value != method:
                raise error(layers, key, f"{path} is a {value!r} recipe")
            continue
        if name not in fields:
            raise ConfigError(f"{where}: unknown key" + _hint(name, fields))
        try:
            recipe[name] = coerce(name, value, fields[name])
            check_range(name, recipe[name], method)
        except FieldError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return recipe


def _check_overrides(overrides: dict, fields: dict, layers, key: list, method=None) -> None:
    for name, value in overrides.items():
        path = [*key, name]
        if name in SET_BY_WORKFLOW:
            raise error(layers, path, f"set by the workflow: use {SET_BY_WORKFLOW[name]}")
        if name not in fields:
            raise error(layers, path, "unknown key" + _hint(name, fields))
        try:
            overrides[name] = coerce(name, value, fields[name])
            check_range(name, overrides[name], method)
        except FieldError as exc:
            raise error(layers, path, str(exc)) from None


def check_training(
    config: dict,
    layers: Sequence[Layer],
    fields_for: Callable[[str], dict[str, dict]] = train_fields,
    root: Path | None = None,
) -> Checked:
    checked = Checked()
    root = root or Path.cwd()
    for method in ("dpo", "rft"):
        fields = fields_for(method)
        recipe = _check_recipe(config[method]["recipe"], method, fields, layers,
                               [method, "recipe"], root)  # fmt: skip
        checked.recipes[method] = recipe
        overrides = config[method]["overrides"] or {}
        _check_overrides(overrides, fields, layers, [method, "overrides"])
        _check_batch(config, [method, "overrides"], {**recipe, **overrides}, fields, layers,
                     config[method]["recipe"])  # fmt: skip
    fields = fields_for("dpo")
    checked.dpo_recipes[config["dpo"]["recipe"]] = checked.recipes["dpo"]
    for arm, settings in (config["arms"] or {}).items():
        overrides = settings["dpo"]["overrides"] or {}
        _check_overrides(overrides, fields, layers, ["arms", arm, "dpo", "overrides"])
    for chain in chains(config):
        if chain.recipe_path not in checked.dpo_recipes:
            checked.dpo_recipes[chain.recipe_path] = _check_recipe(
                chain.recipe_path, "dpo", fields, layers, list(chain.where), root
            )
        recipe = checked.dpo_recipes[chain.recipe_path]
        key = ["arms", chain.arm, "dpo", "overrides"]
        if chain.arm == DEFAULT_ARM or "effective_batch_size" not in _get(config, key)[1]:
            key = ["dpo", "overrides"]
        _check_batch(config, key, {**recipe, **chain.overrides}, fields, layers, chain.recipe_path)
    return checked


def _check_batch(config, key, merged, fields, layers, recipe_path) -> None:
    """codedpo.training.train derives gradient accumulation from effective_batch_size; it must
    divide."""
    effective = merged.get("effective_batch_size", fields["effective_batch_size"].get("default"))
    if effective is None:
        return
    per_device = merged.get(
        "per_device_train_batch_size", fields["per_device_train_batch_size"].get("default", 8)
    )
    processes = config["training"]["num_processes"]
    if effective % (per_device * processes) or effective < per_device * processes:
        path = [*key, "effective_batch_size"]
        raise error(
            layers,
            path,
            f"{effective} is not a multiple of per_device_train_batch_size {per_device} x "
            f"training.num_processes {processes}",
            label=source_of(path, layers) if _get(config, path)[0] else recipe_path,
        )
