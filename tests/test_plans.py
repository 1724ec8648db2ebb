"""The dry-run plan of each shipped config (every job with its files, wildcards, resources and
exact shell command) is the one recorded in tests/plans/: a change to the rules or to
codedpo.workflow that is meant to change nothing for users changes no job.

After an intended change to a plan: `python tests/dry_run_plans.py --write`, then review
`git diff tests/plans`.
"""

from __future__ import annotations

import difflib
import re

import pytest
from dry_run_plans import CONFIGS, PLANS, plan

# Lines of the diff a failure shows: the first differing jobs, not thousands of lines.
SHOWN = 60


# configs/rehearsal.yaml reads the real benchmarks, datasets and tokenizers in ../shared.
NEEDS_SHARED = {"rehearsal"}


@pytest.mark.workflow
@pytest.mark.parametrize(
    "config",
    [pytest.param(c, marks=[pytest.mark.real_data] if c in NEEDS_SHARED else []) for c in CONFIGS],
)
def test_the_plan_is_the_recorded_one(config, tmp_path):
    recorded = (PLANS / f"{config}.txt").read_text()
    planned = plan(config, tmp_path)
    if planned == recorded:
        return
    diff = list(
        difflib.unified_diff(
            recorded.splitlines(),
            planned.splitlines(),
            f"tests/plans/{config}.txt",
            f"the plan of {config} now",
            lineterm="",
        )
    )
    more = f"\n... {len(diff) - SHOWN} more diff lines" if len(diff) > SHOWN else ""
    pytest.fail(
        f"the {config} plan changed (intended? python tests/dry_run_plans.py --write):\n"
        + "\n".join(diff[:SHOWN])
        + more,
        pytrace=False,
    )


@pytest.mark.parametrize(
    ("doc", "pattern", "config"),
    [("README.md", r"the profile plans the paper's (\d+)\s+jobs", "paper"),
     ("docs/cluster.md", r"plans the paper's (\d+) jobs", "paper"),
     ("docs/online-rl.md", r"Its dry run \(.*?\) plans (\d+) jobs", "paper_online")],
)  # fmt: skip
def test_the_job_counts_the_docs_give_are_the_recorded_plans(doc, pattern, config):
    """A job count in the docs is the recorded plan's (whose plan the test above checks), as
    `snakemake -n` counts it where `make setup` built the judge runtime (the recorded plans are
    dry runs with --forceall, which also plan build_runtime)."""
    text = (PLANS.parent.parent / doc).read_text()
    found = re.search(pattern, text, re.S)
    assert found, f"{doc}: no job count matching {pattern!r}"
    lines = (PLANS / f"{config}.txt").read_text().splitlines()
    jobs = sum(1 for line in lines if re.match(r"(local)?rule \w+:$", line)
               and line != "rule build_runtime:")  # fmt: skip
    assert int(found.group(1)) == jobs, f"{doc} says {found.group(1)}, the plan has {jobs}"


# The folders a shipped config's jobs may write outside its results folder: pinned downloads,
# exported training sources and the judge runtime, shared by every experiment (same files).
SHARED_OUTPUTS = ("resources/benchmarks/", "resources/train_sources/", "resources/runtime/")


def test_each_shipped_config_writes_only_in_its_own_results_folder():
    """Experiments kept apart: every output and log of a config's recorded plan (the plan the
    test above checks) lies in the folder the config names, and no two configs share one, so the
    demo, the paper run, the rehearsal, rounds and online arms never overwrite each other."""
    import yaml
    from workflow_helpers import merge

    repo = PLANS.parent.parent
    folders = {}
    for config, args in CONFIGS.items():
        merged = yaml.safe_load((repo / "config.yaml").read_text())
        for f in [a for a in args if a != "--configfile"]:
            merged = merge(merged, yaml.safe_load((repo / f).read_text()))
        folder = merged["results"]
        assert folder not in folders.values(), f"{config} shares {folder} with another config"
        folders[config] = folder
        inside = ("logs/", "benchmarks/") if folder == "results" else ()
        lines = (PLANS / f"{config}.txt").read_text().splitlines()
        written = [p for line in lines if re.match(r"\s+(output|log|benchmark): ", line)
                   for p in line.split(": ", 1)[1].split(", ")]  # fmt: skip
        assert len(written) > 10, config
        stray = [p for p in written if not p.startswith((f"{folder}/", *inside, *SHARED_OUTPUTS))]
        assert not stray, f"{config} writes outside {folder}/: {stray[:5]}"
