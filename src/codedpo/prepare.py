"""``codedpo prepare``: normalize a problem source into the problems JSONL (docs/formats.md).

    codedpo prepare --source ../shared/benchmarks/HumanEvalPlus.jsonl.gz --format humaneval_plus \
        --out results/problems/humaneval_plus.jsonl

Every record is validated against the problems schema; a bad line is an error naming its number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codedpo import benchmarks
from codedpo.io import InputError, read_jsonl, sha256_file, write_jsonl
from codedpo.problems import validate_problem

FORMATS = ("problems", "humaneval", "humaneval_plus", "mbpp", "mbpp_plus", "mbpp_train")


def load_source(path: Path, fmt: str) -> list[dict]:
    if fmt == "problems":
        return [rec for _, rec in read_jsonl(path)]
    if fmt == "humaneval_plus":
        return benchmarks.load_evalplus(path, "humaneval")
    if fmt == "mbpp_plus":
        return benchmarks.load_evalplus(path, "mbpp")
    if fmt == "humaneval":
        return benchmarks.load_humaneval(path)
    if fmt == "mbpp":
        return benchmarks.load_mbpp(path)
    if fmt == "mbpp_train":
        # MBPP's own training split (ids 601-974): real problems with unit tests, disjoint
        # from the evaluation split by construction.
        records = benchmarks.load_mbpp(path, task_ids=range(601, 975))
        for rec in records:
            rec["split"] = "train"
        return records
    raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def prepare(source: Path, fmt: str, split: str | None) -> list[dict]:
    records = load_source(source, fmt)
    seen: set[str] = set()
    out = []
    for n, rec in enumerate(records, start=1):
        where = f"{source}:{n}" if fmt == "problems" else f"{source} (record {n})"
        validate_problem(rec, where)
        if rec["task_id"] in seen:
            raise InputError(f"{where}: field 'task_id': duplicate id {rec['task_id']!r}")
        seen.add(rec["task_id"])
        if split is None or rec.get("split") == split:
            out.append(rec)
    if not out:
        raise InputError(f"{source}: no problems" + (f" in split {split!r}" if split else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="codedpo prepare", description=__doc__.split("\n")[0])
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--format", choices=FORMATS, default="problems")
    p.add_argument("--split", default=None)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    problems = prepare(args.source, args.format, args.split)
    write_jsonl(args.out, problems)
    print(f"{len(problems)} problems from {args.source} (sha256 {sha256_file(args.source)[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
