"""Iterative on-policy rounds and experiment arms: which chains of DPO rounds a config asks for,
and the disjoint per-round slices of the training problems.

A *chain* is one arm with one DPO recipe: round 1 trains from the policy's original model on
pairs of its own samples (the paper), round k samples from round k-1's checkpoint and trains
from it. The default arm, ``paper``, is the config's top-level ``pairs`` and ``dpo`` (one chain
per recipe: ``dpo.recipe``, then ``dpo.recipes``); every entry of ``arms`` is one more chain,
its settings merged over the top-level ones. The rules (rules/common.smk) turn chains into paths.

Slices (``rounds_problems: disjoint``)::

    python -m codedpo.rounds --problems results/problems/train.jsonl --rounds 3 --round 2 \\
        --seed 0 --out results/problems/rounds/r2.jsonl

shuffle the pool with ``seed`` and cut it into ``--rounds`` near-equal slices, or into slices
of ``--size`` problems (which do not move when the number of rounds changes); round k gets
slice k, in the pool's order.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from codedpo.io import InputError, read_jsonl, require, write_jsonl

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


def slice_indices(n: int, round_: int, seed: int, *, rounds: int | None = None,
                  size: int | None = None) -> list[int]:  # fmt: skip
    """Indices (sorted) of round ``round_``'s slice of ``n`` problems: the pool shuffled with
    ``seed``, cut into slices of ``size`` problems, or into ``rounds`` near-equal slices."""
    if (rounds is None) == (size is None):
        raise InputError("give exactly one of --rounds and --size")
    last = rounds if rounds is not None else n // size
    if round_ < 1 or (rounds is not None and round_ > rounds):
        raise InputError(f"--round must be in [1, {rounds}], got {round_}")
    if round_ > last:
        raise InputError(
            f"round {round_} needs problems {(round_ - 1) * size + 1}-{round_ * size} of the "
            f"pool, which has {n}: lower rounds_slice_size or rounds"
        )
    order = random.Random(seed).sample(range(n), n)
    if size is not None:
        chosen = order[(round_ - 1) * size : round_ * size]
    else:
        if n < rounds:
            raise InputError(f"{n} problems cannot make {rounds} disjoint slices")
        base, extra = divmod(n, rounds)
        start = (round_ - 1) * base + min(round_ - 1, extra)
        chosen = order[start : start + base + (round_ <= extra)]
    return sorted(chosen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m codedpo.rounds",
        description="Write one round's disjoint, seeded slice of the training problems.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--problems", required=True, help="the training problems JSONL (the pool)")
    p.add_argument("--rounds", type=int, default=None, help="slices: the pool cut into this many")
    p.add_argument("--round", type=int, required=True, help="this round (1-based)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    p.add_argument(
        "--size", type=int, default=None, help="slices: this many problems each (not with --rounds)"
    )
    p.add_argument("--out", required=True, help="the slice, problems JSONL")
    args = p.parse_args(argv)
    try:
        lines = []
        for lineno, record in read_jsonl(args.problems):
            require(record, "task_id", str, f"{args.problems}:{lineno}")
            lines.append(record)
        keep = slice_indices(len(lines), args.round, args.seed, rounds=args.rounds, size=args.size)
    except InputError as exc:
        print(f"codedpo rounds: error: {exc}", file=sys.stderr)
        return 2
    write_jsonl(args.out, (lines[i] for i in keep))
    print(f"round {args.round}: {len(keep)} of {len(lines)} problems -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
