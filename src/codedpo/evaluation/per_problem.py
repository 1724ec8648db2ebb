"""Per-problem verdicts of one model on one benchmark: what passed, what failed, and the first
failure of each, from an evaluation's ``scores.json`` and ``executions.jsonl``.

Command line::

    codedpo verdicts results/eval/demo-codeqwen/dpo-demo-codeqwen/demo_eval     # a Markdown table
    codedpo verdicts results/eval/demo-codeqwen/base/demo_eval --failed --format csv --out base.csv
    codedpo verdicts --scores S.json --executions E.jsonl [E2.jsonl ...]

The verdict of each problem is the one ``scores.json`` counted (``passed`` or the first failing
status; ``missing`` where no record exists); the tests and the first failure come from its
execution record (docs/formats.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from codedpo.io import InputError, atomic_write, read_json, read_jsonl, require
from codedpo.verbs import command_parser

COLUMNS = ["task_id", "verdict", "tests", "first_failure"]
# Enough of a message to recognise the error; the record keeps it whole.
MESSAGE_CHARS = 120


def _first_failure(record: dict) -> str:
    failure = record.get("first_failure")
    if not isinstance(failure, dict):
        return ""
    where = []
    if failure.get("group") is not None:
        where.append(str(failure["group"]))
    if failure.get("index") is not None:
        where.append(f"test {failure['index']}")
    message = " ".join(str(failure.get("message") or "").split())
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 3] + "..."
    head = f"{' '.join(where)}: " if where else ""
    return f"{head}{failure.get('status', '')}{': ' + message if message else ''}"


def verdict_table(scores: dict, executions: list[tuple[str, dict]]) -> pd.DataFrame:
    """One row per problem of ``scores['verdicts']``, in the benchmark's order."""
    verdicts = scores.get("verdicts")
    if not isinstance(verdicts, dict):
        raise InputError("scores: missing field 'verdicts' (written by codedpo score)")
    records: dict[str, dict] = {}
    for where, record in executions:
        task_id = require(record, "task_id", str, where)
        if task_id not in verdicts:
            raise InputError(f"{where}: field 'task_id': {task_id!r} is not in the scores")
        records[task_id] = record
    rows = []
    for task_id, verdict in verdicts.items():
        record = records.get(task_id, {})
        tests = (
            f"{record['passed']}/{record['total']}"
            if isinstance(record.get("passed"), int) and isinstance(record.get("total"), int)
            else ""
        )
        rows.append(
            {
                "task_id": task_id,
                "verdict": verdict.get("status", "missing") if isinstance(verdict, dict) else "",
                "tests": tests,
                "first_failure": _first_failure(record),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def render(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "tsv":
        return table.to_csv(index=False, sep="\t")
    return table.to_markdown(index=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("verdicts", __doc__)
    parser.add_argument(
        "eval_dir", nargs="?", help="results/eval/{policy}/{variant}/{benchmark} directory"
    )
    parser.add_argument("--scores", help="scores.json (default: EVAL_DIR/scores.json)")
    parser.add_argument(
        "--executions", nargs="+", help="execution JSONL (default: EVAL_DIR/executions.jsonl)"
    )
    parser.add_argument("--failed", action="store_true", help="list only problems that failed")
    parser.add_argument("--format", choices=("md", "csv", "tsv"), default="md",
                        help="Markdown table, CSV or TSV")  # fmt: skip
    parser.add_argument("--out", help="write the table here instead of printing it")
    args = parser.parse_args(argv)
    if not args.eval_dir and not (args.scores and args.executions):
        parser.error("give EVAL_DIR, or --scores and --executions")
    base = Path(args.eval_dir) if args.eval_dir else None
    scores_path = Path(args.scores) if args.scores else base / "scores.json"
    execution_paths = (
        [Path(p) for p in args.executions] if args.executions else [base / "executions.jsonl"]
    )

    scores = read_json(scores_path)
    if not isinstance(scores, dict):
        raise InputError(f"{scores_path}: expected a JSON object")
    executions = [
        (f"{path}:{lineno}", record)
        for path in execution_paths
        for lineno, record in read_jsonl(path)
    ]
    try:
        table = verdict_table(scores, executions)
    except InputError as exc:
        raise InputError(str(exc).replace("scores:", f"{scores_path}:", 1)) from None
    if args.failed:
        table = table[table["verdict"] != "passed"]
    text = render(table, args.format)
    if args.out:
        with atomic_write(args.out) as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    counts = table["verdict"].value_counts().to_dict()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    label = " ".join(str(scores.get(k, "?")) for k in ("policy", "variant", "benchmark"))
    print(f"{label}: {len(table)} problems ({summary or 'none'})", file=sys.stderr)
    return 0
