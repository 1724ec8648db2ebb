"""The ``codedpo`` command: one subcommand per pipeline stage.

    codedpo prepare --source F --format humaneval --out problems.jsonl
    codedpo export-source / slice-problems   (a Hub dataset to JSONL; one round's problems)
    codedpo execute --problems P --samples S --out O --backend bwrap --workers 2
    codedpo build-demo-model --problems P --out DIR --seed 1
    codedpo sample --model DIR --problems P --out samples.jsonl --n 8
    codedpo build-pairs --problems P --samples S --executions E --out-pairs ... --seed 1
    codedpo score --problems P --executions E --benchmark B --policy M --variant V --out F
    codedpo verdicts results/eval/demo-codeqwen/base/demo_eval   (each problem's verdict)
    codedpo tables --scores S... --models A B --benchmarks X --outdir DIR
    codedpo budget / table3          (what each method cost; Table 3: DPO vs RFT vs GRPO)
    codedpo analyze-rewards ...      (DPO implicit reward vs rule-based reward, Figure 1)
    codedpo plot pass-at-1 | pass-histogram | verdicts | rounds | grpo-curves | training-curves ...
    codedpo hack-report / significance   (reward hacks per run; two scores compared)
    codedpo filter / download / extract   (training-set filters, pinned benchmarks, code extraction)
    codedpo runtime --out DIR        (the judge runtime: packages untrusted code may import)
    codedpo launch -- COMMAND ...    (how the rules run long jobs: they stop when told)

`codedpo COMMAND --help` lists a command's options with their defaults. Bad input (bytes that are
not UTF-8, malformed JSON, unknown ids, missing fields) is a one-line error naming the file and
the line, with exit status 2. ``python -m codedpo COMMAND`` is the same command: training runs
as ``accelerate launch ... -m codedpo train ...`` (see :mod:`codedpo.training.train`). The verbs
by stage: the map at the top of :mod:`codedpo`.
"""

from __future__ import annotations

import importlib
import sys

from codedpo.verbs import BAD_INPUT, run_main

COMMANDS = {
    "prepare": "codedpo.problems.prepare",
    "export-source": "codedpo.problems.train_sources",
    "slice-problems": "codedpo.problems.slices",
    "filter": "codedpo.execution.filter",
    "download": "codedpo.problems.download",
    "execute": "codedpo.execution.command",
    "runtime": "codedpo.execution.runtime",
    "extract": "codedpo.sampling.extract",
    "build-demo-model": "codedpo.models.demo",
    "sample": "codedpo.sampling.sample",
    "build-pairs": "codedpo.pairs.build",
    "hack-report": "codedpo.reporting.hack_report",
    "score": "codedpo.evaluation.score",
    "verdicts": "codedpo.evaluation.per_problem",
    "tables": "codedpo.reporting.make_tables",
    "table3": "codedpo.reporting.table3",
    "budget": "codedpo.reporting.budget",
    "train": "codedpo.training.train",
    "analyze-rewards": "codedpo.reporting.implicit_reward",
    "plot": "codedpo.reporting.plots",
    "significance": "codedpo.reporting.significance",
    "launch": "codedpo.workflow.launch",
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("codedpo")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def _usage() -> str:
    return (
        __doc__.strip() + "\n\ncommands: " + ", ".join(COMMANDS) + "\noptions: -h/--help, --version"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--version":
        print(f"codedpo {version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else BAD_INPUT
    if argv[0] not in COMMANDS:
        print(_usage(), file=sys.stderr)
        print(f"\ncodedpo: error: unknown command {argv[0]!r}", file=sys.stderr)
        return BAD_INPUT
    name = f"codedpo {argv[0]}"
    module = importlib.import_module(COMMANDS[argv[0]])
    try:
        return run_main(module.main, name, argv[1:])
    except SystemExit as exc:  # argparse: --help (0) or a bad argument (2)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
