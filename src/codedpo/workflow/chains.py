"""Iterative on-policy rounds and experiment arms: which chains of DPO rounds a config asks for
(each round's slice of the training problems is :mod:`codedpo.problems.slices`).

A *chain* is one arm with one DPO recipe: round 1 trains from the policy's original model on
pairs of its own samples (the paper), round k samples from round k-1's checkpoint and trains
from it. The default arm, ``paper``, is the config's top-level ``pairs`` and ``dpo`` (one chain
per recipe: ``dpo.recipe``, then ``dpo.recipes``); every entry of ``arms`` is one more chain,
its settings merged over the top-level ones. The rules (rules/common.smk) turn chains into paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ARM = "paper"


@dataclass(frozen=True)
class Chain:
    """One arm with one DPO recipe, trained for ``config["rounds"]`` rounds."""

    arm: str
    recipe: str  # the recipe's name (recipe_name of its file)
    recipe_path: str
    pairs: dict = field(hash=False)  # the pair settings (top-level merged with the arm's)
    overrides: dict = field(hash=False)  # the DPO overrides (top-level merged with the arm's)
    where: tuple = ()  # config key of the recipe, for error messages


def recipe_name(path: str) -> str:
    """A recipe's name in paths and tables: the file's stem without ``dpo-``."""
    stem = Path(path).name.split(".")[0]
    return stem[len("dpo-") :] if stem.startswith("dpo-") and len(stem) > len("dpo-") else stem


def chains(config: dict) -> list[Chain]:
    """Every chain the config asks for: the default arm's recipes in order, then the arms,
    sorted by name (the order of a mapping's keys depends on how config files merged)."""
    pairs = dict(config["pairs"])
    overrides = dict(config["dpo"].get("overrides") or {})
    recipes = [(config["dpo"]["recipe"], ("dpo", "recipe"))]
    recipes += [
        (r, ("dpo", "recipes", i)) for i, r in enumerate(config["dpo"].get("recipes") or [])
    ]
    out = [Chain(DEFAULT_ARM, recipe_name(p), p, pairs, overrides, where) for p, where in recipes]
    for arm in sorted(config.get("arms") or {}):
        settings = config["arms"][arm]
        dpo = settings.get("dpo") or {}
        path = dpo.get("recipe") or config["dpo"]["recipe"]
        where = ("arms", arm, "dpo", "recipe") if dpo.get("recipe") else ("dpo", "recipe")
        out.append(
            Chain(
                arm,
                recipe_name(path),
                path,
                {**pairs, **(settings.get("pairs") or {})},
                {**overrides, **(dpo.get("overrides") or {})},
                where,
            )
        )
    return out
