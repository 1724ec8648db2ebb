"""The problems file: loading and validation (JSON Schema in ``problem.schema.json`` beside it)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema

from codedpo.execution.sandbox import codec
from codedpo.io import InputError, read_jsonl
from codedpo.problems.released import iso_date


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        resources.files("codedpo.problems").joinpath("problem.schema.json").read_text()
    )
    return jsonschema.Draft202012Validator(schema)


def validate_problem(record: dict, where: str) -> None:
    """Raise :class:`InputError` naming ``where`` and the field if ``record`` is malformed."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(record))
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path) or "(record)"
        raise InputError(f"{where}: field '{field}': {error.message}")
    if "released" in record:  # the schema checks the shape, this the calendar
        iso_date(record["released"], f"{where}: field 'released'")
    tests = record["tests"]
    if tests["kind"] == "call":
        if not record.get("entry_point"):
            raise InputError(f"{where}: field 'entry_point' is required for call tests")
        for i, case in enumerate(tests["cases"]):
            for key in ("input", "output"):
                if key in case:
                    try:
                        codec.decode(case[key])
                    except (ValueError, TypeError) as exc:
                        raise InputError(
                            f"{where}: field 'tests.cases.{i}.{key}': bad value ({exc})"
                        ) from None
        if any("output" not in c for c in tests["cases"]) and not record.get("canonical_solution"):
            raise InputError(
                f"{where}: field 'tests.cases': outputs are missing and there is no "
                "'canonical_solution' to compute them from"
            )


def load_problems(path: str | Path, split: str | None = None) -> dict[str, dict]:
    """``{task_id: problem}`` in file order, validated; optionally one ``split`` only."""
    problems: dict[str, dict] = {}
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        validate_problem(record, where)
        if record["task_id"] in problems:
            raise InputError(f"{where}: field 'task_id': duplicate id {record['task_id']!r}")
        if split is None or record.get("split") == split:
            problems[record["task_id"]] = record
    if not problems:
        raise InputError(f"{path}: no problems" + (f" in split {split!r}" if split else ""))
    return problems
