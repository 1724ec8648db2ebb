"""Compare two finished runs' ``results/`` trees: the same files with the same contents, except
what records when and how long (dates, durations, throughput) and the hashes of files that hold
durations (execution records); every file is compared itself, so a hash hides nothing.

    python scripts/compare_results.py OLD/results NEW/results

Exit status 0 when the runs agree; otherwise each differing file and its first differing field.
Use it to check that a change which should not change results (a refactor, a new dependency pin)
leaves ``make demo`` producing the same models, pairs, scores and tables.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Fields that record time: when (date), how long (…_s, …_seconds, train_runtime) or how fast.
VOLATILE = re.compile(r"^(date|.*_s|.*_seconds|train_runtime|.*_per_second)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def normalized(value):
    """``value`` without its volatile fields, and with every sha256 as ``<sha256>``."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if not VOLATILE.match(str(k))}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, str) and SHA256.match(value):
        return "<sha256>"
    return value


def records(path: Path):
    """A JSON file's value, a JSONL file's records, or None for other files."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return normalized(json.loads(text))
    if path.suffix == ".jsonl":
        return [normalized(json.loads(line)) for line in text.splitlines() if line.strip()]
    return None


def first_difference(a, b, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where or '(whole)'}: {str(a)[:80]!r} != {str(b)[:80]!r}"


def compare(old: Path, new: Path) -> list[str]:
    """One line per file that is only in one tree or differs beyond its volatile fields."""
    names = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    names_new = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    problems = [f"only in {old}: {n}" for n in sorted(names - names_new)]
    problems += [f"only in {new}: {n}" for n in sorted(names_new - names)]
    for name in sorted(names & names_new):
        a, b = old / name, new / name
        if a.read_bytes() == b.read_bytes():
            continue
        try:
            ra, rb = records(a), records(b)
        except (UnicodeDecodeError, json.JSONDecodeError):
            ra = rb = None
        if ra is None or ra != rb:
            detail = first_difference(ra, rb) if ra is not None else "bytes differ"
            problems.append(f"{name}: {detail}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    problems = compare(args.old, args.new)
    for line in problems:
        print(line)
    total = sum(1 for p in args.old.rglob("*") if p.is_file())
    print(f"{total} files compared, {len(problems)} differ", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
