"""Reading score files (``scores.json`` of :mod:`codedpo.evaluation.score`) for the tables and the
plots.

A score says which model it is about through its fields, never its path: ``policy`` (the model
trained and evaluated), ``variant`` (``base``, ``rft``, ``dpo``, ``grpo``), for DPO
``pairs_from`` (the model whose samples built the pairs; a variant ``dpo-<model>`` without it
means pairs from <model>), and which run of an iterative or multi-arm experiment it is: ``round``
(1 = the paper's one round), ``arm`` (``paper`` = the config's own pairs and DPO settings) and
``recipe`` (``dpo`` = the paper's loss). Scores written before these fields existed are the
paper's run. A base model is one run whatever its fields say; an RFT run has no DPO recipe. A
GRPO run (the online-RL arm) is named by its ``arm`` (the config's ``grpo.arms`` key, e.g.
``pass_all``) and ``recipe`` (its recipe file's stem, e.g. ``grpo-rule``).

Each score is filed under a :data:`Key` ``(policy, kind, pairs_from, run, benchmark)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from codedpo.io import InputError, read_json

# The paper's run: one round, the config's own pairs and DPO recipe. Scores without these fields
# (written before they existed) are read as these.
DEFAULT_ROUND, DEFAULT_ARM, DEFAULT_RECIPE = 1, "paper", "dpo"


class Run(NamedTuple):
    """Which run of an experiment a score is: ``(arm, recipe, round)``."""

    arm: str = DEFAULT_ARM
    recipe: str = DEFAULT_RECIPE
    round: int = DEFAULT_ROUND


DEFAULT_RUN = Run()
Key = tuple[str, str, "str | None", Run, str]


def run_order(run: Run) -> tuple:
    """The paper's arm and recipe first, then the others by name, rounds ascending."""
    return (run.arm != DEFAULT_ARM, run.arm, run.recipe != DEFAULT_RECIPE, run.recipe, run.round)


def recipe_label(recipe: str) -> str:
    """``dpo-ipo`` -> ``ipo``: a recipe file of configs/recipes/ named for its loss."""
    return recipe[4:] if recipe.startswith("dpo-") and len(recipe) > 4 else recipe


def run_suffix(run: Run) -> str:
    """What a row label adds to ``+ DPO``: ``""`` for the paper's run, else e.g. ``max_min ipo r3``
    (the arm, the recipe, the round; each left out where it is the default)."""
    parts = []
    if run.arm != DEFAULT_ARM:
        parts.append(run.arm)
    if run.recipe != DEFAULT_RECIPE:
        parts.append(recipe_label(run.recipe))
    if run.round != DEFAULT_ROUND:
        parts.append(f"r{run.round}")
    return " ".join(parts)


def run_of(score: dict, kind: str, where: str) -> Run:
    """The score's :class:`Run`; a malformed field is an error naming it."""
    values = {}
    for name, default in (("arm", DEFAULT_ARM), ("recipe", DEFAULT_RECIPE)):
        value = score.get(name, default)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: field '{name}': {value!r} is not a name")
        values[name] = value
    round_ = score.get("round", DEFAULT_ROUND)
    if isinstance(round_, bool) or not isinstance(round_, int) or round_ < 1:
        raise InputError(f"{where}: field 'round': {round_!r} is not a round (1, 2, ...)")
    if kind == "base":
        return DEFAULT_RUN
    if kind == "rft":
        return Run(values["arm"], DEFAULT_RECIPE, round_)
    return Run(values["arm"], values["recipe"], round_)


def cell_key(score: dict, models: Sequence[str], where: str) -> tuple[str, str, str | None]:
    """``(policy, kind, pairs_from)`` with kind in base/rft/dpo/grpo; an unknown variant is an
    error."""
    for name in ("policy", "variant", "benchmark", "pass_at_1"):
        if name not in score:
            raise InputError(f"{where}: missing field '{name}'")
    policy, variant = str(score["policy"]), str(score["variant"]).lower()
    if variant == "base":
        return policy, "base", None
    if variant == "rft":
        return policy, "rft", None
    if variant == "grpo" or variant.startswith("grpo-"):
        return policy, "grpo", None
    if variant == "dpo" or variant.startswith(("dpo-", "dpo_")):
        suffix = str(score["variant"])[4:]
        if score.get("pairs_from"):
            pairs_from = str(score["pairs_from"])
        elif suffix in models:
            pairs_from = suffix
        elif suffix:
            raise InputError(
                f"{where}: field 'variant': {score['variant']!r} names no model in "
                f"{list(models)}; give 'pairs_from'"
            )
        else:
            pairs_from = policy
        return policy, "dpo", pairs_from
    raise InputError(
        f"{where}: field 'variant': {score['variant']!r} is not base, rft, dpo or grpo"
    )


def verdicts_of(score: dict, where: str) -> dict[str, bool] | None:
    """``task_id -> passed`` from a score file's ``verdicts`` (None when it has none)."""
    verdicts = score.get("verdicts")
    if verdicts is None:
        return None
    if not isinstance(verdicts, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("passed"), bool) for v in verdicts.values()
    ):
        raise InputError(f"{where}: field 'verdicts' must map task ids to {{'passed': bool}}")
    return {task: v["passed"] for task, v in verdicts.items()}


def pass_at_k_of(score: dict, where: str) -> dict[int, float]:
    """``k -> pass@k`` from the score's ``pass_at_k`` (empty when it has none)."""
    values = score.get("pass_at_k")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"{where}: field 'pass_at_k' must map k to a number in [0, 1]")
    out = {}
    for k, value in values.items():
        if not str(k).isdigit() or int(k) < 1:
            raise InputError(f"{where}: field 'pass_at_k': key {k!r} is not a positive integer")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(f"{where}: field 'pass_at_k.{k}': {value!r} is not in [0, 1]")
        out[int(k)] = float(value)
    return out


@dataclass
class Collected:
    """The scores of the requested models and benchmarks, filed by :data:`Key`."""

    cells: dict[Key, float] = field(default_factory=dict)  # greedy pass@1
    verdicts: dict[Key, dict[str, bool]] = field(default_factory=dict)
    pass_k: dict[Key, dict[int, float]] = field(default_factory=dict)
    samples: set[int] = field(default_factory=set)  # responses per problem behind pass@k

    def runs(self, kind: str, on_policy: bool = True) -> list[Run]:
        """The runs of ``kind`` present, in :func:`run_order`."""
        found = {
            key[3]
            for key in self.cells
            if key[1] == kind and (not on_policy or key[2] in (None, key[0]))
        }
        return sorted(found, key=run_order)

    def ks(self, keys: Sequence[Key]) -> list[int]:
        return sorted({k for key in keys for k in self.pass_k.get(key, {})})


def collect(scores: list[dict], models: Sequence[str], benchmarks: Sequence[str]) -> Collected:
    """File each score of ``models`` on ``benchmarks``; two scores for one key are an error."""
    out = Collected()
    seen: dict[Key, str] = {}
    for i, score in enumerate(scores):
        where = score.get("_path") or f"scores[{i}]"
        policy, kind, pairs_from = cell_key(score, models, where)
        run = run_of(score, kind, where)
        benchmark = str(score["benchmark"])
        if policy not in models or benchmark not in benchmarks:
            continue
        value = score["pass_at_1"]
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InputError(f"{where}: field 'pass_at_1': {value!r} is not a number in [0, 1]")
        key = (policy, kind, pairs_from, run, benchmark)
        if key in seen:
            named = f" {run_suffix(run)}" if run != DEFAULT_RUN else ""
            raise InputError(
                f"{where}: two scores for {policy} {kind}{named} (pairs from {pairs_from}) on "
                f"{benchmark}; the other is {seen[key]}"
            )
        seen[key] = where
        out.cells[key] = float(value)
        per_problem = verdicts_of(score, where)
        if per_problem is not None:
            if len(per_problem) != score.get("total", len(per_problem)) or sum(
                per_problem.values()
            ) != score.get("passed", sum(per_problem.values())):
                raise InputError(f"{where}: field 'verdicts' disagrees with 'passed'/'total'")
            out.verdicts[key] = per_problem
        sampled = pass_at_k_of(score, where)
        if sampled:
            out.pass_k[key] = sampled
            size = (score.get("pass_at_k_samples") or {}).get("samples_per_problem") or {}
            out.samples |= {v for v in (size.get("min"), size.get("max")) if isinstance(v, int)}
    return out


# What a score file says about the model (not when or how fast it was computed): the footer's
# digest, so that an interrupted and resumed run writes the same tables as an uninterrupted one.
RESULT_FIELDS = ("benchmark", "policy", "variant", "pairs_from", "pass_at_1", "passed", "total",
                 "groups", "missing", "sandbox_errors", "status_counts", "verdicts",
                 "problems_sha256", "pass_at_k")  # fmt: skip
# Digested only where they differ from the paper's run, so that the paper's tables keep the digest
# they had before these fields existed.
RUN_FIELDS = {"round": DEFAULT_ROUND, "arm": DEFAULT_ARM, "recipe": DEFAULT_RECIPE}


def results_digest(scores: Sequence[dict]) -> str:
    """sha256 of the scores' results, in a canonical order and spelling."""
    results = sorted(
        json.dumps(
            {k: s[k] for k in RESULT_FIELDS if k in s}
            | {k: s[k] for k, default in RUN_FIELDS.items() if s.get(k, default) != default},
            sort_keys=True,
        )
        for s in scores
    )
    return hashlib.sha256("\n".join(results).encode()).hexdigest()


def load_scores(paths: Sequence[str | os.PathLike]) -> list[dict]:
    scores = []
    for path in paths:
        score = read_json(path)
        if not isinstance(score, dict):
            raise InputError(f"{path}: expected a JSON object, got {type(score).__name__}")
        scores.append({**score, "_path": str(path)})
    return scores
