"""The paper config rehearsed on CPU (configs/rehearsal.yaml over configs/paper.yaml), for real.

Tiny policies on the three paper models' real tokenizer files, a seeded slice of the real
LeetCodeDataset and Codeforces files plus the demo's training problems, and a seeded slice of
the real HumanEval, HumanEval+, MBPP and MBPP+, and of the LeetCodeDataset problems released
after the paper config's date (leetcode_new, not in the paper): every stage the paper config
plans runs, with its prompt templates, formats, tables and paper columns. ``pytest -s`` prints
each stage's cost (scripts/stage_costs.py).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.real_data]
SHARED = REPO.parent / "shared"
CONFIGS = ("--configfile", "configs/paper.yaml", "configs/rehearsal.yaml")
PAPER = yaml.safe_load((REPO / "configs/paper.yaml").read_text())
REHEARSAL = yaml.safe_load((REPO / "configs/rehearsal.yaml").read_text())
# The rehearsal's own results folder (the config's `results`, where the config names one).
RESULTS = REHEARSAL.get("results") or PAPER.get("results") or "results"
# The benchmark of problems released after the models (not in the paper) and its date.
NEW, AFTER = "leetcode_new", PAPER["benchmarks"]["leetcode_new"]["released_after"]


def planned_rules(workdir: Path, *args: str) -> set[str]:
    text = snakemake(workdir, "-n", *args).stdout
    stats = text.split("Job stats:", 1)[1].splitlines()[3:]
    rules = set()
    for line in stats:
        m = re.match(r"^(\w+)\s+\d+$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            rules.add(m.group(1))
    return rules


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED}: the shared data the rehearsal reads is missing")
    root = tmp_path_factory.mktemp("rehearsal")
    # configs/rehearsal.yaml names ../shared/...: the copy sits beside a link to it.
    (root / "shared").symlink_to(SHARED)
    workdir = copy_workflow(root / "wf", extra=("scripts",))
    start = time.monotonic()
    proc = snakemake(workdir, *CONFIGS, timeout=1500)
    print(f"\nrehearsal wall time: {time.monotonic() - start:.0f} s")
    (workdir / "rehearsal.log").write_text(proc.stdout + proc.stderr)
    return workdir


def test_rehearsal_runs_every_stage_of_the_paper_config(rehearsal: Path, tmp_path: Path):
    paper = copy_workflow(tmp_path / "paper")
    planned = planned_rules(paper, "--configfile", "configs/paper.yaml")
    # What the paper config plans, except fetching files the rehearsal reads from ../shared;
    # building the tiny policies replaces downloading the hub models (not a rule).
    expected = planned - {"download_benchmark", "export_train_source"} | {"build_demo_model"}
    log = (rehearsal / "rehearsal.log").read_text()
    ran = set(re.findall(r"^(?:local)?rule (\w+):$", log, re.M))
    assert expected == ran, (expected - ran, ran - expected)
    assert "Nothing to be done" in snakemake(rehearsal, "-n", *CONFIGS).stdout


def test_rehearsal_uses_the_paper_formats_and_prompts(rehearsal: Path):
    problems = rehearsal / RESULTS / "problems"
    for name, bench in PAPER["benchmarks"].items():
        if bench is None or name == NEW:
            continue
        rows = [json.loads(x) for x in (problems / f"{name}.jsonl").open()]
        assert len(rows) == 8  # the seeded slice
        template = yaml.safe_load((REPO / bench["prompt_template"]).read_text())["template"]
        fixed = template.split("{", 1)[0]
        assert all(r["prompt"].startswith(fixed) for r in rows), name
        assert all(r["meta"]["original_prompt"] for r in rows)
    mbpp = [json.loads(x) for x in (problems / "mbpp.jsonl").open()]
    assert all("assert " in r["prompt"] for r in mbpp)  # the 3-shot examples and its tests
    # Problems released after the date only, then the seeded slice; the dataset's own prompt.
    new = [json.loads(x) for x in (problems / f"{NEW}.jsonl").open()]
    assert len(new) == REHEARSAL["benchmarks"][NEW]["max_problems"]
    with gzip.open(REPO / REHEARSAL["benchmarks"][NEW]["path"], "rt") as fh:
        query = {f"leetcode/{r['task_id']}": r["query"] for r in map(json.loads, fh)}
    assert all(r["released"] > AFTER and r["prompt"] == query[r["task_id"]] for r in new)
    log = (rehearsal / RESULTS / f"logs/prepare_problems/{NEW}.log").read_text()
    assert f"released after {AFTER}: 228 of 228 problems kept" in log
    report = json.loads((problems / "train.filter_report.json").read_text())
    assert set(report["counts"]["by_source"]) == {"leetcode", "codeforces", "demo"}


def test_rehearsal_tables_have_the_paper_columns(rehearsal: Path):
    tables = rehearsal / RESULTS / "tables"
    t1 = pd.read_csv(tables / "table1.csv").set_index(["model", "method"])
    t2 = pd.read_csv(tables / "table2.csv").set_index(["model", "method"])
    benchmarks = ["humaneval", "humaneval_plus", "mbpp", "mbpp_plus"]
    for bench in benchmarks:
        assert t1[bench].notna().all() and t2[bench].notna().all()
        assert t1[f"{bench} (paper)"].notna().all() and t2[f"{bench} (paper)"].notna().all()
        assert t1[f"{bench} diff"].notna().sum() == 6  # + RFT and + DPO of three models
    assert t1.loc[("tiny-codeqwen", "base"), "humaneval (paper)"] == 0.829
    assert list(t2.index.get_level_values(0).unique()) == ["tiny-codeqwen", "tiny-deepseek"]
    row = ("tiny-deepseek", "DPO off-policy (pairs from tiny-codeqwen)")
    assert t2.loc[row, "mbpp (paper)"] == 0.735
    # The benchmark beyond the paper: a column of ours, none of the paper's, its date in the note.
    assert t1[NEW].notna().all() and t2[NEW].notna().all()
    assert f"{NEW} (paper)" not in t1.columns and f"{NEW} (paper)" not in t2.columns
    note = f"{NEW}: problems released after {AFTER} (not in the paper)."
    assert note in (tables / "table1.md").read_text() and note in (tables / "table2.md").read_text()


def test_rehearsal_samples_end_at_the_stop_token(rehearsal: Path):
    """Responses are stored as the policies generated them, cut at their end-of-turn token:
    no special token or template markup in any raw response."""
    markup = ("<|im_end|>", "<|im_start|>", "<|EOT|>", "</s>", "<s>", "### Instruction",
              "[INST]", "<|endoftext|>", "<｜begin▁of▁sentence｜>")  # fmt: skip
    for policy in ("tiny-codeqwen", "tiny-deepseek", "tiny-codellama"):
        samples = [json.loads(x) for f in (rehearsal / RESULTS / f"samples/{policy}").glob("*")
                   for x in f.open()]  # fmt: skip
        assert samples
        assert not [s["raw"] for s in samples if any(m in s["raw"] for m in markup)], policy
        stats = json.loads((rehearsal / RESULTS / f"pairs/{policy}/stats.json").read_text())
        assert stats["pairs"] > 0, policy  # on the demo problems


def test_print_stage_costs(rehearsal: Path):
    spec = importlib.util.spec_from_file_location("stage_costs", REPO / "scripts/stage_costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.stage_costs(rehearsal, RESULTS)
    print("\n" + module.to_markdown(rows, paper=True))
    by_rule = {r["rule"]: r for r in rows}
    # 8 problems of 4 benchmarks and 4 of leetcode_new, 11 runs each
    assert by_rule["generate_eval"]["units"] == (8 * 4 + 4) * 11
    assert by_rule["execute_eval"]["cpu_s_per_unit"] > 0
