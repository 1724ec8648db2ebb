"""The ``codedpo`` command: one subcommand per pipeline stage.

    codedpo execute --problems P --samples S --out O --backend bwrap --workers 2
    codedpo build-demo-model --problems P --out DIR --seed 1
    codedpo sample --model DIR --problems P --out samples.jsonl --n 8
    codedpo build-pairs --problems P --samples S --executions E --out-pairs ... --seed 1
    codedpo score --problems P --executions E --benchmark B --policy M --variant V --out F
    codedpo tables --scores S... --models A B --benchmarks X --outdir DIR
    codedpo analyze-rewards ...      (DPO implicit reward vs rule-based reward, Figure 1)
    codedpo plot pass-at-1 | pass-histogram | verdicts ...
    codedpo prepare / download       (problem sources, pinned benchmark files)
    codedpo runtime --out DIR        (the judge runtime: packages untrusted code may import)

Training runs through ``accelerate launch -m codedpo.train`` (see ``codedpo.train``).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "prepare": "codedpo.prepare",
    "filter": "codedpo.filters",
    "download": "codedpo.download",
    "execute": "codedpo.execute.__main__",
    "runtime": "codedpo.runtime",
    "build-demo-model": "codedpo.demo",
    "sample": "codedpo.generate",
    "build-pairs": "codedpo.pairs",
    "score": "codedpo.scoring",
    "tables": "codedpo.tables",
    "train": "codedpo.train",
    "analyze-rewards": "codedpo.analysis",
    "plot": "codedpo.plots",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(COMMANDS))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    from codedpo.io import InputError

    try:
        return int(module.main(argv[1:]) or 0)
    except InputError as exc:
        print(f"codedpo {argv[0]}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
