"""Training problem sources: public LeetCode and Codeforces datasets as problems (docs/formats.md).

The paper trains on about 3,000 LeetCode and Codeforces queries with unit tests. Two public
Hugging Face datasets carry exactly that, with a reference solution that can be checked:

- ``newfacade/LeetCodeDataset`` (Apache-2.0; format ``leetcode``): Python LeetCode problems in the
  HumanEval layout, each with a ``check(candidate)`` test function, a reference ``completion`` and
  an entry point such as ``Solution().twoSum``. Its ``train`` split holds the older problems (by
  question id) and its ``test`` split the newer ones, so training on ``train`` keeps its test split
  usable as a held-out set. Records become ``assert`` problems in the order the dataset's own
  evaluator runs ``prompt + completion + test + check(entry_point)``: ``prelude`` is the
  dataset's ``prompt`` (imports plus the ``ListNode``/``TreeNode`` helpers), run before the
  solution; ``canonical_solution`` is the ``completion``; ``helpers`` is the ``test`` (the
  ``check`` function, run only by the judge); the assertions are the check function's, one test
  each where the ast allows (else ``check(candidate)``).
- ``deepmind/code_contests`` (CC-BY-4.0, AlphaCode's data; format ``codecontests``): Codeforces
  (and CodeChef, AtCoder, ...) problems with stdin/stdout tests and many human solutions labelled
  by language. Records become ``stdio`` problems with the public and private tests (the generated
  ones on request) and the first ``PYTHON3`` solution as the reference. APPS/TACO were passed
  over: their tests are JSON strings that mix function-call and stdio problems and many of their
  reference solutions fail their own tests, while CodeContests' solutions are judged correct.

Record formats, as verified against the sources (field names are not guessed):

- LeetCodeDataset v0.3.x (the Hub's ``LeetCodeDataset-{train,test}.jsonl``): flat fields
  ``task_id`` (slug), ``question_id``, ``difficulty``, ``tags``, ``problem_description``,
  ``starter_code``, ``estimated_date``, ``prompt``, ``completion``, ``entry_point``, ``test``,
  ``input_output`` (list of ``{input, output}`` strings), ``query``, ``response``. Older releases on
  GitHub nest ``question_id``, ``difficulty``, ``lang_code`` (starter code) and
  ``question_title`` (the description) under ``meta``; both layouts load. ``estimated_date`` (the
  dataset's estimate of the release date; the v0.2.0 files have none) becomes the problem's
  ``released`` (:mod:`codedpo.problems.released`).
- CodeContests (``contest_problem.proto``; on the Hub as parquet): ``name``, ``description``,
  ``public_tests`` / ``private_tests`` / ``generated_tests`` as ``{input: [str], output: [str]}``,
  ``solutions`` / ``incorrect_solutions`` as ``{language: [int], solution: [str]}`` with
  ``language`` 0 unknown, 1 PYTHON (Python 2), 2 CPP, 3 PYTHON3, 4 JAVA; ``source`` and
  ``difficulty`` enums, ``cf_contest_id``, ``cf_index``, ``cf_rating``, ``cf_tags``,
  ``time_limit`` ``{seconds, nanos}``, ``memory_limit_bytes``, ``input_file``, ``output_file``.
  The proto's JSON form (tests as a list of ``{input, output}``, languages by name) loads too.

A source is a local file as the dataset ships it (JSONL, optionally gzipped, or parquet) or a Hub
id loaded with :func:`datasets.load_dataset`. Export a Hub dataset to a pinned local file for the
workflow with::

    codedpo export-source --hub newfacade/LeetCodeDataset --split train \
        --out resources/train_sources/leetcode-train.jsonl
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codedpo.io import InputError, read_jsonl, write_jsonl
from codedpo.problems.load import validate_problem
from codedpo.problems.python_source import split_check_function
from codedpo.problems.released import iso_date
from codedpo.verbs import command_parser

LEETCODE_HUB = "newfacade/LeetCodeDataset"
CODECONTESTS_HUB = "deepmind/code_contests"

# contest_problem.proto enums.
CC_LANGUAGES = {0: "UNKNOWN_LANGUAGE", 1: "PYTHON", 2: "CPP", 3: "PYTHON3", 4: "JAVA"}
CC_PYTHON3 = 3
CC_SOURCES = {0: "UNKNOWN_SOURCE", 1: "CODECHEF", 2: "CODEFORCES", 3: "HACKEREARTH",
              4: "CODEJAM", 6: "ATCODER", 7: "AIZU"}  # fmt: skip
CC_DIFFICULTIES = {0: "UNKNOWN_DIFFICULTY", 1: "EASY", 2: "MEDIUM", 3: "HARD", 4: "HARDER",
                   5: "HARDEST", 6: "EXTERNAL",
                   # Codeforces problem letters; the proto skips 18.
                   **{7 + i: c for i, c in enumerate("ABCDEFGHIJK")},
                   **{19 + i: c for i, c in enumerate("LMNOPQRSTUV")}}  # fmt: skip
CC_TEST_SETS = ("public", "private", "generated")
# Codeforces' wording for answers judged within a tolerance ("absolute or relative error does not
# exceed 10^{-6}"); 1e-6 is the tolerance those statements almost always give.
_FLOAT_TOL_RE = re.compile(
    r"(absolute|relative)\s+(or\s+relative\s+)?(error|inaccuracy)"
    r"|\binaccuracy\b"
    r"|differs? from the (correct|right|jury'?s?) (one|answer|value)? ?by (at most|no more than)"
    r"|digits? after the decimal point",
    re.IGNORECASE,
)
# The tolerance a statement names ("10^{-9}", "1e-9") after its wording; 1e-6 when it names none.
_TOL_VALUE_RE = re.compile(r"10\s*\^\s*\{?\s*-\s*(\d+)\s*\}?|1e-(\d+)", re.IGNORECASE)
FLOAT_TOL = 1e-6
# Statements of problems that accept any valid answer (a checker, not a fixed output), and of
# interactive ones: their tests' outputs are one answer among many, so comparing with them would
# reject correct programs. Codeforces' own wording.
_CHECKER_RE = re.compile(
    r"\b(print|output)\s+any\b"
    r"|\bany of them (is|are|will be) (acceptable|accepted|correct)"
    r"|\bsatisfied by any\b"
    r"|\b(print|output)\b[^.]{0,80}\bin (any|arbitrary) order\b"
    r"|\bthis is an interactive problem",
    re.IGNORECASE,
)
# Other accepted Python 3 solutions kept to tell checker problems: they disagree on a test.
OTHER_SOLUTIONS = 2
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

LEETCODE_INSTRUCTION = "Please complete the following python code precisely:"
STDIO_INSTRUCTION = (
    "Write a complete Python 3 program that reads the input from standard input and writes the "
    "answer to standard output."
)


# -- reading ------------------------------------------------------------------------------------
def is_hub_id(source: str | Path) -> bool:
    """A ``owner/name`` string that is not a local path."""
    return not Path(source).exists() and bool(_HUB_ID.match(str(source)))


def read_records(
    source: str | Path, split: str = "train", revision: str | None = None
) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` from a JSONL(.gz) or parquet file, or a Hub id (``split`` of it)."""
    if is_hub_id(source):
        import datasets  # heavy import: only for Hub ids

        # Streaming reads the parquet shards one at a time instead of materializing them all.
        ds = datasets.load_dataset(str(source), split=split, streaming=True, revision=revision)
        for n, rec in enumerate(ds, start=1):
            yield f"{source}[{split}] (row {n})", dict(rec)
        return
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: file not found (and not a Hugging Face dataset id)")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for n, rec in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield f"{path} (row {n})", rec
        return
    for lineno, rec in read_jsonl(path):
        yield f"{path}:{lineno}", rec


def _require_str(rec: dict, field: str, where: str, *, empty: bool = False) -> str:
    value = rec.get(field)
    if not isinstance(value, str) or (not empty and not value.strip()):
        got = "missing" if field not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
        raise InputError(f"{where}: field '{field}' must be a non-empty string, got {got}")
    return value


def _plain(value: Any) -> Any:
    """JSON-safe copy of metadata (parquet gives timestamps and numpy-like scalars)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _report_skipped(name: str, skipped: Counter) -> None:
    if skipped:
        why = ", ".join(f"{reason}: {n}" for reason, n in skipped.most_common())
        print(f"codedpo: {name}: {sum(skipped.values())} records skipped ({why})", file=sys.stderr)


# -- LeetCodeDataset ----------------------------------------------------------------------------
def leetcode_problem(rec: dict, where: str) -> dict:
    """One LeetCodeDataset record as an ``assert`` problem."""
    slug = _require_str(rec, "task_id", where)
    prelude = _require_str(rec, "prompt", where, empty=True)
    completion = _require_str(rec, "completion", where)
    entry = _require_str(rec, "entry_point", where)
    test = _require_str(rec, "test", where)
    nested = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
    description = rec.get("problem_description") or nested.get("question_title")
    starter = rec.get("starter_code") or nested.get("lang_code")
    query = rec.get("query") or nested.get("query")
    if isinstance(query, str) and query.strip():
        prompt = query
    elif isinstance(description, str) and description.strip() and isinstance(starter, str):
        prompt = f"{description.rstrip()}\n\n{LEETCODE_INSTRUCTION}\n```python\n{starter}\n```"
    else:
        raise InputError(
            f"{where}: field 'query' (or 'problem_description' with 'starter_code') is missing"
        )
    try:
        compile(test, f"{where}: test", "exec")
    except SyntaxError as exc:
        raise InputError(f"{where}: field 'test' is not valid Python ({exc.msg})") from None
    # Loops or helpers inside check(): the judge runs it whole.
    asserts = split_check_function(test) or ["check(candidate)"]
    question_id = rec.get("question_id", nested.get("question_id"))
    meta = {
        "original_task_id": slug,
        "question_id": question_id,
        "difficulty": rec.get("difficulty", nested.get("difficulty")),
        "tags": rec.get("tags", nested.get("tags")),
    }
    problem = {
        "task_id": f"leetcode/{slug}",
        "prompt": prompt,
        "entry_point": entry,
        "canonical_solution": completion,
        "split": "train",
        "source": "leetcode",
        "tests": {"kind": "assert", "prelude": prelude, "prelude_from": "dataset",
                  "helpers": test, "asserts": asserts},
        "meta": _plain({k: v for k, v in meta.items() if v is not None}),
    }
    # The dataset's estimate of the problem's release date (v0.3.x; v0.2.0 has none).
    estimated = rec.get("estimated_date", nested.get("estimated_date"))
    if estimated is not None:
        problem["released"] = iso_date(estimated, f"{where}: field 'estimated_date'")
    return problem


def load_leetcode(
    source: str | Path = LEETCODE_HUB, split: str = "train", limit: int | None = None
) -> list[dict]:
    """LeetCodeDataset records (a local file or the Hub id) as validated ``assert`` problems."""
    problems: list[dict] = []
    for where, rec in read_records(source, split):
        problem = leetcode_problem(rec, where)
        validate_problem(problem, where)
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    return problems


# -- CodeContests -------------------------------------------------------------------------------
def _pairs(rec: dict, field: str, where: str) -> list[tuple[str, str]]:
    """``{input: [...], output: [...]}`` (Hub) or ``[{input, output}, ...]`` (proto JSON)."""
    value = rec.get(field)
    if value is None:
        return []
    if isinstance(value, dict):
        inputs, outputs = value.get("input") or [], value.get("output") or []
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise InputError(f"{where}: field '{field}.input/output' must be lists")
        if len(inputs) != len(outputs):
            raise InputError(
                f"{where}: field '{field}': {len(inputs)} inputs but {len(outputs)} outputs"
            )
        pairs = list(zip(inputs, outputs, strict=True))
    elif isinstance(value, list) and all(isinstance(t, dict) for t in value):
        pairs = [(t.get("input"), t.get("output")) for t in value]
    else:
        raise InputError(
            f"{where}: field '{field}' must be {{input: [...], output: [...]}}, "
            f"got {type(value).__name__}"
        )
    for i, (inp, out) in enumerate(pairs):
        if not isinstance(inp, str) or not isinstance(out, str):
            raise InputError(f"{where}: field '{field}' test {i}: input and output must be strings")
    return pairs


def _solutions(rec: dict, field: str, where: str) -> list[tuple[int, str]]:
    value = rec.get(field)
    if value is None:
        return []
    if isinstance(value, dict):
        langs, codes = value.get("language") or [], value.get("solution") or []
        if len(langs) != len(codes):
            raise InputError(
                f"{where}: field '{field}': {len(langs)} languages but {len(codes)} solutions"
            )
        pairs = list(zip(langs, codes, strict=True))
    elif isinstance(value, list):
        pairs = [(s.get("language"), s.get("solution")) for s in value if isinstance(s, dict)]
    else:
        raise InputError(f"{where}: field '{field}' must be {{language: [...], solution: [...]}}")
    by_name = {v: k for k, v in CC_LANGUAGES.items()}
    out = []
    for lang, code in pairs:
        lang = by_name.get(lang, lang) if isinstance(lang, str) else lang
        if not isinstance(lang, int) or not isinstance(code, str):
            raise InputError(f"{where}: field '{field}': bad language {lang!r} or solution")
        out.append((lang, code))
    return out


def _seconds(limit: Any) -> float | None:
    if isinstance(limit, dict):
        s = float(limit.get("seconds") or 0) + float(limit.get("nanos") or 0) / 1e9
        return s or None
    return None


def float_tolerance(description: str) -> float | None:
    """The tolerance of real-valued answers a Codeforces statement allows, or None (exact)."""
    found = _FLOAT_TOL_RE.search(description)
    if found is None:
        return None
    value = _TOL_VALUE_RE.search(description, found.start(), found.end() + 120)
    if value is None:
        return FLOAT_TOL
    return 10.0 ** -int(value.group(1) or value.group(2))


def codecontests_problem(
    rec: dict,
    where: str,
    test_sets: tuple[str, ...] = ("public", "private"),
    only_sources: tuple[str, ...] | None = None,
) -> tuple[dict | None, str | None]:
    """One CodeContests record as a ``stdio`` problem, or ``(None, why it was skipped)``.

    ``only_sources`` keeps the records of those judges (``CODEFORCES``, ``ATCODER``, ...).
    """
    name = _require_str(rec, "name", where)
    description = _require_str(rec, "description", where)
    source, difficulty = rec.get("source"), rec.get("difficulty")
    if only_sources is not None and CC_SOURCES.get(source, source) not in only_sources:
        return None, f"not from {'/'.join(only_sources)}"
    for test_set in test_sets:
        if test_set not in CC_TEST_SETS:
            raise InputError(f"unknown CodeContests test set {test_set!r}; choose {CC_TEST_SETS}")
    # A judge's input file ends with a newline; exports that strip it break `input()[:-1]`.
    cases = [
        {"input": inp if inp.endswith("\n") else inp + "\n", "output": out, "group": test_set}
        for test_set in test_sets
        for inp, out in _pairs(rec, f"{test_set}_tests", where)
    ]
    solutions = _solutions(rec, "solutions", where)
    if rec.get("input_file") or rec.get("output_file"):
        return None, "reads or writes files instead of stdin/stdout"
    python3 = [code for lang, code in solutions if lang == CC_PYTHON3]
    if not python3:
        return None, "no Python 3 solution"
    if not cases:
        return None, "no tests"
    checker = _CHECKER_RE.search(description)
    meta = {
        "name": name,
        "needs_checker": f"statement: {checker.group(0)!r}" if checker else None,
        "other_solutions": python3[1 : 1 + OTHER_SOLUTIONS] or None,
        "source": CC_SOURCES.get(source, source),
        "difficulty": CC_DIFFICULTIES.get(difficulty, difficulty),
        "cf_contest_id": rec.get("cf_contest_id") or None,
        "cf_index": rec.get("cf_index") or None,
        "cf_rating": rec.get("cf_rating") or None,
        "cf_tags": rec.get("cf_tags") or None,
        "time_limit_s": _seconds(rec.get("time_limit")),
        "memory_limit_bytes": rec.get("memory_limit_bytes") or None,
        "python3_solutions": len(python3),
    }
    problem = {
        "task_id": f"codecontests/{name}",
        "prompt": f"{description.rstrip()}\n\n{STDIO_INSTRUCTION}",
        "entry_point": None,
        "canonical_solution": python3[0],
        "split": "train",
        "source": "codecontests",
        "tests": {
            "kind": "stdio",
            "cases": cases,
            "float_tol": float_tolerance(description),
        },
        "meta": _plain({k: v for k, v in meta.items() if v is not None}),
    }
    return problem, None


def load_codecontests(
    source: str | Path = CODECONTESTS_HUB,
    split: str = "train",
    test_sets: tuple[str, ...] = ("public", "private"),
    limit: int | None = None,
    only_sources: tuple[str, ...] | None = None,
) -> list[dict]:
    """CodeContests records as validated ``stdio`` problems; unusable records are skipped.

    Skipped (counted on stderr): no Python 3 solution, no tests in ``test_sets``, file I/O, and
    with ``only_sources`` (e.g. ``("CODEFORCES",)``) the other judges' problems.
    """
    problems: list[dict] = []
    seen: Counter = Counter()
    skipped: Counter = Counter()
    for where, rec in read_records(source, split):
        problem, why = codecontests_problem(rec, where, test_sets, only_sources)
        if problem is None:
            skipped[why] += 1
            continue
        seen[problem["task_id"]] += 1
        if seen[problem["task_id"]] > 1:  # names can agree between sources (the proto says so)
            problem["task_id"] += f"#{seen[problem['task_id']]}"
        validate_problem(problem, where)
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    _report_skipped("code_contests", skipped)
    return problems


# -- exporting a Hub dataset to a local file ----------------------------------------------------
def export_hub(
    hub_id: str, split: str, out: Path, limit: int | None = None, revision: str | None = None
) -> int:
    """Write ``split`` of a Hub dataset to JSONL as it ships (the workflow then pins the file)."""
    rows = (_plain(rec) for _, rec in read_records(hub_id, split, revision))
    return write_jsonl(out, itertools.islice(rows, limit))


def main(argv: list[str] | None = None) -> int:
    p = command_parser("export-source", "Export a Hub dataset split to JSONL.")
    p.add_argument("--hub", required=True, help=f"dataset id, e.g. {LEETCODE_HUB}")
    p.add_argument("--split", default="train", help="the dataset's split")
    p.add_argument("--revision", default=None, help="dataset commit or tag (default: main)")
    p.add_argument("--limit", type=int, default=None, help="first N records only")
    p.add_argument("--out", type=Path, required=True, help="JSONL to write (atomic)")
    args = p.parse_args(argv)
    n = export_hub(args.hub, args.split, args.out, args.limit, args.revision)
    print(json.dumps({"hub": args.hub, "split": args.split, "records": n, "out": str(args.out)}))
    return 0
