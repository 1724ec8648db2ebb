"""``codedpo prepare``: normalize a problem source into the problems JSONL (docs/formats.md).

    codedpo prepare --source ../shared/benchmarks/HumanEvalPlus.jsonl.gz --format humaneval_plus \
        --out results/problems/humaneval_plus.jsonl

Every record is validated against the problems schema; a bad line is an error naming its number.
``--released-after DATE`` keeps the problems released strictly after DATE
(:mod:`codedpo.problems.released`; a source without release dates is an error), before
``--max-problems`` draws its subset.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import yaml

from codedpo.io import InputError, read_jsonl, sha256_file, write_jsonl
from codedpo.problems import benchmark_formats as benchmarks
from codedpo.problems import train_sources as sources
from codedpo.problems.load import validate_problem
from codedpo.problems.released import iso_date, released_after
from codedpo.verbs import command_parser

FORMATS = (
    "problems",
    "humaneval",
    "humaneval_plus",
    "mbpp",
    "mbpp_plus",
    "mbpp_train",
    "leetcode",
    "codecontests",
    "codeforces",
)


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
    if fmt == "leetcode":  # newfacade/LeetCodeDataset (codedpo.problems.train_sources)
        return sources.load_leetcode(path)
    if fmt == "codecontests":  # deepmind/code_contests (codedpo.problems.train_sources)
        return sources.load_codecontests(path)
    if fmt == "codeforces":  # the Codeforces problems of deepmind/code_contests
        return sources.load_codecontests(path, only_sources=("CODEFORCES",))
    raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        raise InputError(f"prompt template: unknown field {{{key}}}; known: {sorted(self)}")


def _fields(rec: dict) -> _Fields:
    tests = rec["tests"].get("asserts") or []
    return _Fields(
        prompt=rec["prompt"],
        entry_point=rec.get("entry_point") or "",
        tests="\n".join(tests),
        solution=(rec.get("canonical_solution") or "").strip(),
    )


def apply_template(records: list[dict], template: dict, source: Path, fmt: str) -> None:
    """Rewrite each record's ``prompt`` (the user turn) from a template file's ``template``.

    Few-shot examples (``shots``: MBPP task ids) come from the source's own prompt split.
    """
    if "template" not in template or not isinstance(template["template"], str):
        raise InputError("prompt template: field 'template' must be a string")
    examples = ""
    if template.get("shots"):
        if fmt not in ("mbpp", "mbpp_train"):
            raise InputError(f"prompt template: 'shots' needs an MBPP source, not {fmt!r}")
        pool = {r["task_id"]: r for r in benchmarks.load_mbpp(source, task_ids=range(1, 11))}
        try:
            shots = [pool[f"Mbpp/{n}"] for n in template["shots"]]
        except KeyError as exc:
            raise InputError(f"prompt template: field 'shots': {exc} is not in ids 1-10") from None
        examples = "".join(
            template.get("example", "").format_map(_fields(s)) + "\n\n" for s in shots
        )
    for rec in records:
        fields = _fields(rec)
        fields["examples"] = examples
        rec.setdefault("meta", {})["original_prompt"] = rec["prompt"]
        rec["prompt"] = template["template"].format_map(fields)


def prepare(
    source: Path,
    fmt: str,
    split: str | None,
    template: dict | None = None,
    max_problems: int | None = None,
    seed: int = 0,
    exclude: dict[str, str] | None = None,
    after: str | None = None,
) -> list[dict]:
    """The source's problems (of ``split``), validated, ids unique.

    ``after`` (``YYYY-MM-DD``) keeps the problems released strictly after that date
    (:func:`codedpo.problems.released.released_after`: every problem must carry its date).
    ``max_problems`` then keeps a random subset of that size (drawn with ``seed``), in source
    order.
    ``exclude`` (task id -> reason) leaves out problems whose own data is at fault (a benchmark
    task whose reference fails its tests); an id the source does not have is an error.
    """
    if max_problems is not None and max_problems < 1:
        raise InputError(f"--max-problems must be at least 1, got {max_problems}")
    records = load_source(source, fmt)
    if template is not None:
        apply_template(records, template, source, fmt)
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
    unknown = sorted(set(exclude or {}) - seen)
    if unknown:
        raise InputError(f"{source}: --exclude names tasks the source does not have: {unknown}")
    out = [rec for rec in out if rec["task_id"] not in (exclude or {})]
    if not out:
        raise InputError(f"{source}: no problems" + (f" in split {split!r}" if split else ""))
    if after is not None:
        kept = released_after(out, after, str(source), fmt)
        dates = sorted(p["released"] for p in kept)
        print(f"released after {after}: {len(kept)} of {len(out)} problems kept "
              f"(released {dates[0]} to {dates[-1]})", file=sys.stderr)  # fmt: skip
        out = kept
    if max_problems is not None and len(out) > max_problems:
        keep = sorted(random.Random(seed).sample(range(len(out)), max_problems))
        out = [out[i] for i in keep]
    return out


def parse_exclusions(items: list[str]) -> dict[str, str]:
    """``TASK_ID=REASON`` items as a mapping; a reason is required."""
    out = {}
    for item in items:
        task_id, sep, reason = item.partition("=")
        if not sep or not task_id or not reason.strip():
            raise InputError(f"--exclude {item!r}: expected TASK_ID=REASON (a reason is required)")
        out[task_id] = reason.strip()
    return out


def _date_arg(value: str) -> str:
    try:
        return iso_date(value, "--released-after")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    p = command_parser("prepare", __doc__.split("\n")[0])
    p.add_argument("--source", type=Path, required=True, help="the source file (JSONL, .gz)")
    p.add_argument("--format", choices=FORMATS, default="problems", help="how to read it")
    p.add_argument("--split", default=None, help="keep only this split (default: every problem)")
    p.add_argument(
        "--prompt-template",
        type=Path,
        default=None,
        help="YAML with 'template' (and optional 'example', 'shots'), configs/prompts/",
    )
    p.add_argument(
        "--max-problems",
        type=int,
        default=None,
        help="keep a random subset of this many problems (in source order)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the --max-problems subset")
    p.add_argument(
        "--released-after",
        type=_date_arg,
        default=None,
        metavar="YYYY-MM-DD",
        help="keep only problems released strictly after this date (a model's training cutoff); "
        "every problem must carry its release date",
    )
    p.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        metavar="TASK_ID=REASON",
        help="leave out these tasks (the dataset's own fault, e.g. a reference that fails)",
    )
    p.add_argument("--out", type=Path, required=True, help="problems JSONL to write (atomic)")
    args = p.parse_args(argv)
    exclude = parse_exclusions(args.exclude)
    template = None
    if args.prompt_template is not None:
        if not args.prompt_template.exists():
            raise InputError(f"{args.prompt_template}: prompt template not found")
        template = yaml.safe_load(args.prompt_template.read_text())
        if not isinstance(template, dict):
            raise InputError(f"{args.prompt_template}: expected a mapping with 'template'")
    problems = prepare(args.source, args.format, args.split, template, args.max_problems, args.seed,
                       exclude, args.released_after)  # fmt: skip
    write_jsonl(args.out, problems)
    print(f"{len(problems)} problems from {args.source} (sha256 {sha256_file(args.source)[:12]})")
    return 0
