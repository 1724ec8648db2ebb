"""Markdown and LaTeX renderings of the tables built by :mod:`codedpo.reporting.tables`.

A table is a DataFrame indexed by ``(model, method)`` (or more levels: the round table's
``(model, arm, recipe, round)``). Its columns per benchmark ``b``: ``b`` (our greedy pass@1),
``b (paper)`` (the paper's, where stored), ``b pass@k (sampled)`` (where scored), and for
rows compared with a reference row (the base model; the round table's round 1) ``b diff``,
``b diff low``, ``b diff high`` (the difference and its 95% paired bootstrap interval) and ``b p``
(McNemar's exact p-value). The CSV keeps every column as a
number; here the difference and its interval share one cell, marked ``*`` when the interval
excludes 0, and the LaTeX version sets each model block's best score in bold.

Our own writers: pandas' ``to_markdown`` needs ``tabulate`` (not a dependency) and
``Styler.to_latex`` cannot pick the best value per row block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

DECIMALS = 3
MISSING = "-"
LATEX_MISSING = "--"
DIFF, LOW, HIGH, P = " diff", " diff low", " diff high", " p"
MARK = "*"
MARK_NOTE = (
    f"{MARK}: the 95% paired bootstrap interval of the difference to the base model excludes 0"
)

# ``labels(*index_levels, first_row_of_model)``: the leading cells of a row.
Labels = Callable[..., list[str]]
DIFF_HEADER = "diff [95% CI]"


def is_score_column(column: str) -> bool:
    return not column.endswith((DIFF, LOW, HIGH, P))


def _fmt(value) -> str:
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{DECIMALS}f}"
    return str(value)


def _signed(value: float) -> str:
    # "+0.000" for an exact zero reads as a gain; a plain 0 does not.
    return f"{value:+.{DECIMALS}f}" if value != 0 else f"{0:.{DECIMALS}f}"


def _p(value: float) -> str:
    if math.isnan(value):
        return MISSING
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def display(
    df: pd.DataFrame, diff_header: str = DIFF_HEADER
) -> tuple[list[str], list[str], list[list[str]], list[list[bool]]]:
    """``(columns, kinds, rows, marked)``: the shown columns (the interval folded into its
    difference), each one's kind (``score``, ``diff``, ``p``), the cells as text, and which
    difference cells carry the mark."""
    columns, kinds = [], []
    for column in df.columns:
        if is_score_column(column):
            columns.append(column)
            kinds.append("score")
        elif column.endswith(DIFF):
            columns.append(f"{column[: -len(DIFF)]} {diff_header}")
            kinds.append("diff")
        elif column.endswith(P):
            columns.append(column)
            kinds.append("p")
    rows, marked = [], []
    for _, row in df.iterrows():
        cells, marks = [], []
        for column in df.columns:
            value = row[column]
            if is_score_column(column):
                cells.append(_fmt(value))
                marks.append(False)
            elif column.endswith(DIFF):
                base = column[: -len(DIFF)]
                low, high = row[base + LOW], row[base + HIGH]
                if math.isnan(value):
                    cells.append(MISSING)
                    marks.append(False)
                    continue
                excludes = low > 0 or high < 0
                cell = f"{_signed(value)} [{_signed(low)}, {_signed(high)}]"
                cells.append(cell + (MARK if excludes else ""))
                marks.append(excludes)
            elif column.endswith(P):
                cells.append(_p(value))
                marks.append(False)
        rows.append(cells)
        marked.append(marks)
    return columns, kinds, rows, marked


def to_markdown(
    df: pd.DataFrame, labels: Labels, headers: list[str], diff_header: str = DIFF_HEADER
) -> str:
    """Pipe table; ``labels(model, method, first_row_of_model)`` gives the leading cells (one
    argument per index level, then the flag)."""
    columns, _, rows, _ = display(df, diff_header)
    head = headers + columns
    body = []
    previous = None
    for key, cells in zip(df.index, rows, strict=True):
        body.append(labels(*key, key[0] != previous) + cells)
        previous = key[0]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    n_labels = len(headers)

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i < n_labels else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ":" + "-" * (w + 1) if i < n_labels else "-" * (w + 1) + ":"
            for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(head), rule, *(line(r) for r in body)]) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def best_in_block(df: pd.DataFrame) -> pd.DataFrame:
    """Booleans shaped like ``df``: the highest score of each column within each model's rows.

    Ties are all best; a column with fewer than two values in a block marks nothing (a lone
    number is not a comparison); differences and p-values are never marked.
    """
    best = pd.DataFrame(False, index=df.index, columns=df.columns)
    for _, block in df.groupby(level=0, sort=False):
        for column in df.columns:
            if not is_score_column(column):
                continue
            values = block[column].dropna()
            if len(values) >= 2:
                best.loc[values.index[values == values.max()], column] = True
    return best


def to_latex(df: pd.DataFrame, labels: Labels, headers: list[str], note: str | None = None) -> str:
    """A booktabs ``tabular``: a rule between model blocks, each block's best scores in bold,
    differences whose interval excludes 0 marked with a superscript star."""
    columns, _, rows, marked = display(df)
    best = best_in_block(df)
    shown = [c for c in df.columns if not c.endswith((LOW, HIGH))]
    lines = []
    if note:
        lines.append(f"% {note}")
    lines += [
        "% \\usepackage{booktabs}",
        "\\begin{tabular}{" + "l" * len(headers) + "r" * len(columns) + "}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in headers + columns) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for key, cells, marks in zip(df.index, rows, marked, strict=True):
        model = key[0]
        if previous is not None and model != previous:
            lines.append("\\midrule")
        out = [latex_escape(c) for c in labels(*key, model != previous)]
        for column, text, mark in zip(shown, cells, marks, strict=True):
            if text == MISSING:
                out.append(LATEX_MISSING)
                continue
            if mark:
                text = latex_escape(text[: -len(MARK)]) + "$^{*}$"
            else:
                text = latex_escape(text)
            if is_score_column(column) and best.loc[key, column]:
                text = f"\\textbf{{{text}}}"
            out.append(text)
        lines.append(" & ".join(out) + " \\\\")
        previous = model
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
