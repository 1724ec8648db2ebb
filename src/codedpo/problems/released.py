"""Problems released after a date: a benchmark no model can have seen before its training cutoff.

A problem's release date is its record's optional ``released`` (``YYYY-MM-DD``), set by the
loaders of sources that carry one (LeetCodeDataset's ``estimated_date``; our own problems files
may carry it too). ``codedpo prepare --released-after DATE`` keeps the problems released
strictly after ``DATE`` (:func:`released_after`): a model whose training data ends on ``DATE``
cannot have seen them. A source without dates is an error, never a silent pass: an undated
problem may be as old as HumanEval.
"""

from __future__ import annotations

import datetime

from codedpo.io import InputError

# The formats whose records can carry ``released``, for the error on a source that has none.
DATED_FORMATS = {
    "leetcode": "LeetCodeDataset v0.3.x's estimated_date",
    "problems": "each record's 'released'",
}


def iso_date(value: object, where: str) -> str:
    """``value`` (``2024-08-04``, ``2024-08-04T00:00:00``, a date or datetime) as ``YYYY-MM-DD``."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()[:10]
    if isinstance(value, str):
        for parse in (datetime.date.fromisoformat, datetime.datetime.fromisoformat):
            try:
                return parse(value.strip()).isoformat()[:10]
            except ValueError:
                pass
    raise InputError(f"{where}: expected a date YYYY-MM-DD, got {value!r}")


def released_after(problems: list[dict], date: str, source: str, fmt: str) -> list[dict]:
    """The problems released strictly after ``date`` (``YYYY-MM-DD``), in source order.

    Every problem must carry ``released``: an undated one is an error naming the file and the
    first such task, and so is a date that keeps nothing.
    """
    undated = [p["task_id"] for p in problems if not p.get("released")]
    if undated:
        dated = " or ".join(f"format {f} ({why})" for f, why in DATED_FORMATS.items())
        raise InputError(
            f"{source}: --released-after {date}: {len(undated)} of {len(problems)} problems "
            f"(format {fmt}) carry no release date, first {undated[0]!r}; dates come from {dated}"
        )
    kept = [p for p in problems if p["released"] > date]
    if not kept:
        latest = max(p["released"] for p in problems)
        raise InputError(
            f"{source}: --released-after {date}: no problem is released after it "
            f"(the latest: {latest})"
        )
    return kept
