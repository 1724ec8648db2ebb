"""``codedpo slice-problems``: one round's disjoint, seeded slice of the training problems
(``rounds_problems: disjoint``)::

    codedpo slice-problems --problems results/problems/train.jsonl --rounds 3 --round 2 \\
        --seed 0 --out results/problems/rounds/r2.jsonl

shuffle the pool with ``seed`` and cut it into ``--rounds`` near-equal slices, or into slices
of ``--size`` problems (which do not move when the number of rounds changes); round k gets
slice k, in the pool's order.
"""

from __future__ import annotations

import random

from codedpo.io import InputError, read_jsonl, require, write_jsonl
from codedpo.verbs import command_parser


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
    p = command_parser("slice-problems", __doc__)
    p.add_argument("--problems", required=True, help="the training problems JSONL (the pool)")
    p.add_argument("--rounds", type=int, default=None, help="slices: the pool cut into this many")
    p.add_argument("--round", type=int, required=True, help="this round (1-based)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    p.add_argument(
        "--size", type=int, default=None, help="slices: this many problems each (not with --rounds)"
    )
    p.add_argument("--out", required=True, help="the slice, problems JSONL")
    args = p.parse_args(argv)
    lines = []
    for lineno, record in read_jsonl(args.problems):
        require(record, "task_id", str, f"{args.problems}:{lineno}")
        lines.append(record)
    keep = slice_indices(len(lines), args.round, args.seed, rounds=args.rounds, size=args.size)
    write_jsonl(args.out, (lines[i] for i in keep))
    print(f"round {args.round}: {len(keep)} of {len(lines)} problems -> {args.out}")
    return 0

