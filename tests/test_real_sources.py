"""Real training data nobody here wrote: every reference passes, or is dropped for its own fault.

Every LeetCodeDataset reference (v0.2.0 train, v0.3.1 test) and every Codeforces reference of
``../shared/datasets/`` goes through `codedpo prepare` + `codedpo filter`, as the workflow runs
them (bwrap, the judge runtime built by `codedpo runtime`). A correct reference that the executor
rejected would become a *rejected* response in a DPO pair, so each drop must be the dataset's own
fault; those are listed below with the evidence (read from the problem, or measured with plain
``python3 sol.py < input`` outside any sandbox: the evidence is reproduced in the
README's executor section).

One pass over each file, on 2 cores shared with other work (`pytest --durations`): Codeforces
145 s, LeetCodeDataset v0.3.1 test 72 s, v0.2.0 train 29 s.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed"),
]

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO = Path(__file__).resolve().parents[1]

# Codeforces references that fail their own tests, and why: the dataset's fault.
CODEFORCES_FAULTS = {
    # The export paired a solution with another problem's tests (both fail under plain python3).
    "1118_F1. Tree Cutting (Easy Version)":
        "tests 3 and 6-9 are the Hard Version's (first line 'n k'); the reference reads one int",
    "1264_C. Beautiful Mirrors with queries":
        "the reference solves 1265_E (no queries); public tests 0-2 have 'n q' and queries",
    "1324_F. Maximum White Subtree":
        "the reference solves 1092_F and prints one number; tests 2-4 are 1092_F's",
    "1056_D. Decorate Apple Tree":
        "test 5 is n = 1: the empty second line the reference reads was stripped by the export",
    "1540_B. Tree Array":
        "test 3 expects 3, the reference prints 1000000010 (3 + 10^9 + 7: a missing '% mod')",
    # Any valid answer is accepted (Codeforces uses a checker) though the statement has none of
    # the phrases the loader looks for; the reference prints another valid answer.
    "1076_D. Edge Deletion": "any edge set keeping the most good vertices is valid",
    "1325_C. Ehab and Path-etic MEXs": "any labeling minimizing the largest MEX is valid",
    "1391_E. Pairs of Pairs": "any valid PATH or PAIRING is accepted",
    "1521_D. Nastia Plays with a Tree": "any minimum sequence of operations is valid",
    "749_B. Parallelogram is Back": "'no requirement for the points to be arranged in any order'",
    "407_A. Triangle": "any placement of the triangle with integer vertices is valid",
}
# Correct but slower than a CPython judge's limit on 2 cores (21-36 CPU s per test in plain
# python3: accepted under PyPy): a timeout is their own, a pass is fine too.
CODEFORCES_SLOW = {"1503_E. 2-Coloring", "1238_E. Keyboard Purchase", "623_D. Birthday",
                   "1278_F. Cards"}  # fmt: skip
LEETCODE_FAULTS = {
    # The problem returns "all the shortest sequences in any order"; the test compares a list in
    # one order, which the reference reproduces only under some hash seeds (5 of 10 measured).
    "leetcode/word-ladder-ii": "the expected order of the paths follows set iteration order",
}
LEETCODE_SLOW = {"leetcode/find-the-number-of-subsequences-with-equal-gcd"}
# The filter's own drops, with the evidence on the record.
EVIDENCE = {"duplicate": "duplicate_of", "needs_checker": "evidence"}


def codedpo(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "codedpo", *args], capture_output=True,
                          text=True, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def runtime(judge_runtime) -> Path:
    return judge_runtime


def filtered(tmp: Path, source: Path, fmt: str, runtime: Path) -> tuple[list[dict], dict]:
    problems = tmp / "problems.jsonl"
    codedpo("prepare", "--source", str(source), "--format", fmt, "--out", str(problems))
    start = time.monotonic()
    # A generous per-test limit: this checks the references' answers, not their speed on a
    # loaded CI machine (the slow ones are listed).
    codedpo("filter", "--problems", str(problems), "--out", str(tmp / "kept.jsonl"),
            "--report", str(tmp / "report.json"), "--workers", "2", "--backend", "bwrap",
            "--runtime", str(runtime), "--test-seconds", "20", "--no-progress")  # fmt: skip
    print(f"{source.name}: filter {time.monotonic() - start:.0f} s")
    report = json.loads((tmp / "report.json").read_text())
    kept = [json.loads(line) for line in (tmp / "kept.jsonl").read_text().splitlines()]
    return kept, report


def check_drops(report: dict, faults: dict[str, str], slow: set[str], key) -> None:
    for drop in report["dropped"]:
        name = key(drop["task_id"])
        if drop["reason"] in EVIDENCE:
            assert drop.get(EVIDENCE[drop["reason"]]), drop
        elif drop["reason"] == "reference_fails" and drop["status"] == "timeout":
            assert name in slow, drop
        else:
            assert drop["reason"] == "reference_fails" and name in faults, drop


@pytest.mark.parametrize("name", ["LeetCodeDataset-v0.2.0-train", "LeetCodeDataset-v0.3.1-test"])
def test_leetcode_references(tmp_path, runtime, name):
    kept, report = filtered(tmp_path, DATA / "LeetCodeDataset" / f"{name}.jsonl.gz", "leetcode",
                            runtime)  # fmt: skip
    check_drops(report, LEETCODE_FAULTS, LEETCODE_SLOW, key=lambda t: t)
    dropped = {d["task_id"] for d in report["dropped"]}
    assert report["counts"]["input"] == len(kept) + len(dropped)
    # Among the kept: the answers that needed the judge runtime, real module semantics, the
    # prelude before the solution, and judged tests with ListNode/TreeNode values.
    ids = {p["task_id"] for p in kept}
    expected_kept = {
        "LeetCodeDataset-v0.2.0-train": {"leetcode/contains-duplicate-iii",
                                         "leetcode/abbreviating-the-product-of-a-range",
                                         "leetcode/count-number-of-texts",
                                         "leetcode/reverse-linked-list"},
        "LeetCodeDataset-v0.3.1-test": {"leetcode/minimum-amount-of-damage-dealt-to-bob",
                                        "leetcode/find-x-sum-of-all-k-long-subarrays-ii"},
    }[name]  # fmt: skip
    assert expected_kept <= ids, expected_kept - ids


def test_codeforces_references(tmp_path, runtime):
    source = DATA / "CodeContests" / "codecontests-cf300-hf-layout.jsonl.gz"
    kept, report = filtered(tmp_path, source, "codeforces", runtime)
    check_drops(report, CODEFORCES_FAULTS, CODEFORCES_SLOW, key=lambda t: t.split("/", 1)[1])
    reasons = report["counts"]["dropped"]
    print(f"Codeforces: {report['counts']['kept']} kept, dropped {reasons}")
    # Interactive problems and those whose statements accept any answer never reach training.
    for p in kept:
        assert not re.search(r"\bprint any\b|interactive problem", p["prompt"], re.I), p
    names = {p["task_id"].split("/", 1)[1] for p in kept}
    # Answers that call exit(), print at exit (atexit), read `input()[:-1]`: kept.
    assert {"913_B. Christmas Spruce", "61_E. Enemy is weak", "1183_H. Subsequences (hard version)",
            "938_E. Max History"} <= names  # fmt: skip
