"""``codedpo hack-report``: the reward hacks of several runs, per policy and round.

The counts come from each run's ``stats.json`` (``hacks``: the classes of
:mod:`codedpo.execution.hacks`)::

    codedpo hack-report --stats results/iterative/pairs/demo-codeqwen/stats.json \\
        results/iterative/pairs/demo-codeqwen/paper/dpo/r2/stats.json \\
        --labels "demo-codeqwen round 1" "demo-codeqwen round 2" \\
        --out-md hacks.md --out-csv hacks.csv --out-plot hacks.png
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from codedpo.execution.hacks import CLASSES, SECONDARY
from codedpo.io import InputError, atomic_write, read_json
from codedpo.verbs import command_parser

_ROUND = re.compile(r"^(?P<series>.*?)\s*\bround\s+(?P<round>\d+)\s*$", re.IGNORECASE)
COLUMNS = ["label", "series", "round", "samples", "flagged", "rate", "flagged_passed",
           *CLASSES, *SECONDARY]  # fmt: skip


def parse_label(label: str) -> tuple[str, int]:
    """``"demo-codeqwen round 2"`` -> ``("demo-codeqwen", 2)``; without a round, round 1."""
    match = _ROUND.match(label)
    if match is None:
        return label, 1
    return match["series"] or label, int(match["round"])


def report_table(runs: Sequence[tuple[str, dict, str]]) -> pd.DataFrame:
    """One row per run: ``(label, stats, where)``; the counts of stats.json's ``hacks``."""
    rows = []
    for label, stats, where in runs:
        summary = stats.get("hacks") if isinstance(stats, dict) else None
        if not isinstance(summary, dict):
            raise InputError(f"{where}: missing field 'hacks' (written by codedpo build-pairs)")
        for field in ("samples", "flagged", "counts"):
            if field not in summary:
                raise InputError(f"{where}: field 'hacks': missing field '{field}'")
        series, round_ = parse_label(label)
        counts = summary["counts"]
        secondary = (summary.get("secondary") or {}).get("counts") or {}
        samples = int(summary["samples"])
        rows.append(
            {
                "label": label,
                "series": series,
                "round": round_,
                "samples": samples,
                "flagged": int(summary["flagged"]),
                "rate": int(summary["flagged"]) / samples if samples else float("nan"),
                "flagged_passed": int(summary.get("flagged_passed") or 0),
                **{c: int(counts.get(c, 0)) for c in CLASSES},
                **{n: int(secondary.get(n, 0)) for n in SECONDARY},
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def render_markdown(table: pd.DataFrame) -> str:
    shown = table.drop(columns=["series", "round"]).copy()
    shown["rate"] = shown["rate"].map(lambda r: f"{100 * r:.2f}%" if r == r else "-")
    note = (
        "Responses flagged from their execution records (docs/formats.md, `hacks`); a flagged "
        "response is never chosen nor an RFT example. `flagged_passed`: flagged responses that "
        "passed every test. `text:*` columns are source-text patterns (secondary signals, not "
        "used for exclusion).\n\n"
    )
    return "# Reward-hacking report\n\n" + note + shown.to_markdown(index=False) + "\n"


def plot_rates(table: pd.DataFrame, out: str | os.PathLike) -> Path:
    """The share of flagged responses against the round, one line per series (policy, arm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from codedpo.reporting.plots import _save

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for series, sub in table.groupby("series", sort=False):
        sub = sub.sort_values("round", kind="stable")
        ax.plot(sub["round"], 100 * sub["rate"], marker="o", label=str(series))
    rounds = sorted(set(table["round"]))
    ax.set_xticks(rounds, [str(r) for r in rounds])
    ax.set_xlabel("round")
    ax.set_ylabel("responses flagged (%)")
    top = float((100 * table["rate"]).max()) if len(table) else 0.0
    ax.set_ylim(0, max(1.0, 1.15 * top) if top == top else 1.0)  # at least 0-1 %
    ax.grid(alpha=0.3)
    if len(table):
        ax.legend(fontsize=7, frameon=False)
    ax.set_title("Reward hacks among the on-policy samples")
    return _save(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("hack-report", "The reward-hacking report of several runs.")
    parser.add_argument("--stats", required=True, nargs="+", help="stats.json of build-pairs")
    parser.add_argument(
        "--labels",
        nargs="+",
        help="one per --stats, e.g. 'demo-codeqwen round 2' ('POLICY round K'; none: each stats "
        "file's directory name, round 1)",
    )
    parser.add_argument("--out-md", help="Markdown table")
    parser.add_argument("--out-csv", help="CSV table")
    parser.add_argument("--out-plot", help="figure: the hack rate per round (.png, .pdf, .svg)")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.stats):
        parser.error(f"{len(args.labels)} --labels for {len(args.stats)} --stats")
    labels = args.labels or [Path(p).parent.name for p in args.stats]
    table = report_table(
        [(label, read_json(p), p) for label, p in zip(labels, args.stats, strict=True)]
    )
    text = render_markdown(table)
    if args.out_md:
        with atomic_write(args.out_md) as fh:
            fh.write(text)
    if args.out_csv:
        with atomic_write(args.out_csv) as fh:
            fh.write(table.to_csv(index=False))
    if args.out_plot:
        plot_rates(table, args.out_plot)
    if not (args.out_md or args.out_csv or args.out_plot):
        sys.stdout.write(text)
    total = int(table["flagged"].sum())
    print(f"{len(table)} runs, {total} flagged responses", file=sys.stderr)
    return 0

