"""The jobs a dry run plans, as text: one block per job (rule, wildcards, inputs, outputs, log,
threads, resources, params-driven shell command), sorted, without run-specific lines (job ids,
reasons). ``tests/plans/<config>.txt`` holds each shipped config's plan; ``test_plans.py`` checks
that the workflow still plans exactly those jobs with exactly those commands.

    python tests/dry_run_plans.py --write   # after an intended change to a plan: review the diff
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workflow_helpers import copy_workflow, snakemake  # noqa: E402

PLANS = Path(__file__).parent / "plans"
SHARED = Path(__file__).resolve().parents[2] / "shared"
# config name -> extra snakemake arguments (config.yaml is read by the Snakefile itself)
CONFIGS = {
    "default": (),
    "paper": ("--configfile", "configs/paper.yaml"),
    "iterative": ("--configfile", "configs/iterative.yaml"),
    "rehearsal": ("--configfile", "configs/paper.yaml", "configs/rehearsal.yaml"),
    "online": ("--configfile", "configs/online.yaml"),
    "paper_online": ("--configfile", "configs/paper.yaml", "configs/paper_online.yaml"),
}
DROPPED = re.compile(r"^\s*(jobid|reason|priority):|^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]$")
HEADER = re.compile(r"^(local)?(rule|checkpoint) \w+:$")


def parse_plan(text: str) -> list[str]:
    """Job blocks of ``snakemake -n -p`` output, each normalized and sorted."""
    jobs: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if HEADER.match(line):
            current = [line]
            jobs.append(current)
        elif current is not None:
            if line.startswith("Job stats:") or line.startswith("This was a dry-run"):
                current = None
            elif line.strip() and not DROPPED.match(line):
                current.append(line.rstrip())
    blocks = []
    for job in jobs:
        # dependency lists and "input:" of a dry run list files in DAG order: sort them
        lines = [_sorted_list(line) for line in job]
        blocks.append("\n".join(lines))
    return sorted(blocks)


def _sorted_list(line: str) -> str:
    m = re.match(r"^(\s+(?:input|output)): (.*)$", line)
    if not m:
        return line
    return f"{m.group(1)}: " + ", ".join(sorted(m.group(2).split(", ")))


def plan(config: str, workdir: Path | None = None) -> str:
    """The plan of one shipped config, from a dry run in a fresh copy of the workflow."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp)
        # configs name shared files as ../shared/...: the copy sits beside a link to them
        if SHARED.is_dir() and not (root / "shared").exists():
            (root / "shared").symlink_to(SHARED)
        workdir = copy_workflow(root / config)
        proc = snakemake(workdir, "-n", "-p", "--forceall", *CONFIGS[config])
    return "\n\n".join(parse_plan(proc.stdout + proc.stderr)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite tests/plans/*.txt")
    parser.add_argument("configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    changed = 0
    for config in args.configs:
        text = plan(config)
        path = PLANS / f"{config}.txt"
        if path.exists() and path.read_text() == text:
            print(f"{config}: unchanged ({text.count(chr(10) + chr(10)) + 1} jobs)")
            continue
        changed += 1
        print(f"{config}: {'written' if args.write else 'differs'}")
        if args.write:
            path.write_text(text)
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
