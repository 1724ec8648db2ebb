"""``codedpo tables``: Table 1 and Table 2 (:mod:`codedpo.reporting.tables`) from score files,
and with ``--rounds-table`` the round table (:mod:`codedpo.reporting.rounds_table`).

Command line::

    codedpo tables --scores results/scores/*.json --models deepseek codeqwen \\
        --benchmarks humaneval humaneval_plus mbpp mbpp_plus --outdir results/tables \\
        [--off-policy codeqwen=deepseek deepseek=codeqwen] [--bootstrap-seed 0] \\
        [--paper configs/paper_results.yaml --model-ids codeqwen=Qwen/CodeQwen1.5-7B-Chat ...
         --benchmark-ids humaneval=humaneval ...] [--released-after leetcode_new=2024-04-30] \\
        [--rounds-table]

writes ``table1.{csv,md,tex}`` and ``table2.{csv,md,tex}`` (and ``rounds.{csv,md}``); the note
under each names the date of every benchmark that keeps only problems released after one
(``--released-after``, the config's ``benchmarks.<b>.released_after``).
"""

from __future__ import annotations

import sys

from codedpo.evaluation.score_files import collect, load_scores, results_digest
from codedpo.io import InputError
from codedpo.reporting import rounds_table
from codedpo.reporting.paper_results import load_paper
from codedpo.reporting.table_format import MARK_NOTE, MISSING
from codedpo.reporting.tables import (
    PAPER,
    Bootstrap,
    add_released_argument,
    build_tables,
    key_values,
    pass_k_note,
    released_dates,
    released_note,
    write_tables,
)
from codedpo.verbs import command_parser


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("tables", __doc__)
    parser.add_argument(
        "--scores",
        required=True,
        nargs="*",
        help="scores JSON files (none: an empty table, beside the paper's numbers if given)",
    )
    parser.add_argument("--models", required=True, nargs="+", help="models, in table order")
    parser.add_argument("--benchmarks", required=True, nargs="+", help="benchmarks, column order")
    parser.add_argument("--outdir", required=True, help="directory for table{1,2}.{csv,md,tex}")
    parser.add_argument("--paper", default=None, help="the paper's numbers (YAML)")
    parser.add_argument(
        "--model-ids", nargs="*", default=[], metavar="POLICY=HUB_ID", help="policies' hub ids"
    )
    parser.add_argument(
        "--benchmark-ids",
        nargs="*",
        default=[],
        metavar="OURS=PAPERS",
        help="which of the paper's benchmarks each benchmark is (humaneval, mbpp_plus, ...)",
    )
    parser.add_argument(
        "--off-policy",
        nargs="*",
        default=None,
        metavar="POLICY=PAIRS_FROM",
        help="Table 2's off-policy DPO runs (default: every model on every other model's pairs)",
    )
    add_released_argument(parser)
    Bootstrap.add_arguments(parser)
    parser.add_argument(
        "--rounds-table",
        action="store_true",
        help="also write rounds.{md,csv}: pass@1 per benchmark, round and arm",
    )
    args = parser.parse_args(argv)

    paper = None
    if args.paper:
        paper = load_paper(
            args.paper,
            key_values(args.model_ids, "--model-ids"),
            key_values(args.benchmark_ids, "--benchmark-ids"),
        )
    off = None
    if args.off_policy is not None:
        off = []
        for item in args.off_policy:
            policy, sep, source = item.partition("=")
            if not sep or not policy or not source:
                raise InputError(f"--off-policy: expected POLICY=PAIRS_FROM, got {item!r}")
            off.append((policy, source))
    dated = released_dates(args.released_after, args.benchmarks)
    settings = Bootstrap.from_args(args)
    scores = load_scores(args.scores)
    table1, table2 = build_tables(scores, args.models, args.benchmarks, paper, off, settings)
    provenance = (
        f"From {len(scores)} score files (sha256 of their results {results_digest(scores)[:16]})."
    )
    note = f"Greedy pass@1; '{MISSING}' = not run. {provenance}"
    note += (
        f" diff: pass@1 minus the base model's on the same problems, with its "
        f"{settings.confidence:.0%} paired bootstrap interval over problems (percentile, "
        f"{settings.resamples} resamples, seed {settings.seed}); p: McNemar's exact test; "
        f"{MARK_NOTE}."
    )
    if paper:
        note += f" Columns marked {PAPER}: the paper's reported numbers ({args.paper})."
    if dated:
        note += " " + released_note(dated)
    sampled = collect(scores, args.models, args.benchmarks).samples
    if sampled:
        note += " " + pass_k_note(sampled)
    written = write_tables(table1, table2, args.outdir, note=note)
    if args.rounds_table:
        table = rounds_table.build_rounds_table(scores, args.models, args.benchmarks, settings)
        extra = rounds_table.rounds_note(settings, provenance)
        if dated:
            extra += " " + released_note(dated)
        if sampled:
            extra += " " + pass_k_note(sampled)
        written += rounds_table.write_rounds_table(table, args.outdir, note=extra)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
