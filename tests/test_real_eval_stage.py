"""The evaluation stage end to end on the real benchmarks (``../shared/benchmarks``), bwrap.

Each benchmark is set up exactly as ``configs/paper.yaml`` sets it up (format and prompt
template), and goes through the commands the workflow's rules run, as subprocesses:

    codedpo prepare -> codedpo execute --expected-only -> (model responses) ->
    codedpo extract -> codedpo execute -> codedpo score

The "model responses" are the canonical solutions written the way chat models answer: a fenced
block with chatter and a usage example, an untagged fence, CodeLlama's ``[PYTHON]`` tags, code in
prose without fences, and a block that also holds the model's own asserts and a ``__main__`` demo.
Extraction keeps the raw text and the sanitized code; then:

1. Every canonical solution of HumanEval (164), HumanEval+ (164), MBPP's test split (500) and
   MBPP+ (378), wrapped as a response, scores 1.0
   (greedy pass@1 of ``codedpo score``, which counts a problem as passed only when every test
   group, base and plus, passes). There are no exceptions on the current data. Of HumanEval+ and
   MBPP+, the responses executed here are every fourth task's (the mutants' tasks) and every one
   whose extracted code is not the canonical program itself (the extractor keeps what the entry
   point needs: an unused import or helper goes); the others' extracted code has the canonical
   solution's syntax tree, and ``tests/test_real_benchmarks.py`` runs every canonical solution on
   every base and plus input with the same executor, so running them again here would give the
   same records (and cost 1-2 minutes of CI).
2. Mutants (return ``None``, an off-by-one answer, raise, an object whose ``__eq__`` is always
   True), wrapped the same way, on every fourth task of HumanEval+ and MBPP+, score as EvalPlus
   0.3.1's ``evalplus.evaluate`` scores the same extracted code, task by task, except where EvalPlus
   is fooled or faulty, and those exceptions are computed from EvalPlus's own output, not listed:
   - the ``__eq__`` mutant: EvalPlus compares inside the untrusted process, so the object passes
     there; ours must fail it on every task;
   - a canonical solution EvalPlus fails: HumanEval/32 under 0.3.1 (a bug fixed in later EvalPlus
     releases) and MBPP+ time-limit flakes (``../shared/benchmarks/README.md``); ours must pass.

About 3-4 minutes on 2 cores (EvalPlus builds its ground truth for the subsets first).
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not SHARED.exists(), reason="../shared/benchmarks not present"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) not installed"),
]

# configs/paper.yaml's benchmark files (downloaded at pinned versions) -> the same files here.
SHARED_FILE = {
    "HumanEval.jsonl.gz": "HumanEval.jsonl.gz",
    "HumanEvalPlus-v0.1.10.jsonl.gz": "HumanEvalPlus.jsonl.gz",
    "mbpp.jsonl": "mbpp.jsonl.gz",
    "MbppPlus-v0.2.0.jsonl.gz": "MbppPlus-v0.2.0.jsonl.gz",
}
# The benchmarks EvalPlus evaluates: its dataset name and the variable that points it at a file.
EVALPLUS = {
    "humaneval_plus": ("humaneval", "HUMANEVAL_OVERRIDE_PATH"),
    "mbpp_plus": ("mbpp", "MBPP_OVERRIDE_PATH"),
}
SUBSET_STEP = 4  # mutants on every fourth task of HumanEval+ / MBPP+
KINDS = ("canonical", "none", "off_by_one", "raise", "always_equal")
EXEC_FLAGS = ["--backend", "bwrap", "--workers", "2", "--no-progress"]


def paper_benchmarks() -> dict[str, dict]:
    """The paper's four benchmarks as the paper config sets them up (its ``null`` entries drop
    the demo's; its LeetCode column, not in the paper, is tests/test_real_sources.py's)."""
    spec = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())["benchmarks"]
    return {name: b for name, b in spec.items()
            if b is not None and b.get("format") in ("humaneval", "humaneval_plus", "mbpp",
                                                     "mbpp_plus")}  # fmt: skip


# -- model responses ----------------------------------------------------------------------------
def as_response(code: str, entry: str, style: int) -> str:
    """``code`` as a chat model writes it, in one of five styles."""
    code = code.strip("\n")
    if style == 0:
        return (
            f"Here is the completed function:\n\n```python\n{code}\n```\n\n"
            f"It handles the edge cases in the docstring. Example usage:\n\n"
            f"```python\nprint({entry}.__name__)\n```\n\nOutput:\n```\n{entry}\n```\n"
        )
    if style == 1:
        return f"Sure.\n```\n{code}\n```\n"
    if style == 2:
        return f"[PYTHON]\n{code}\n[/PYTHON]\n"
    if style == 3:
        return f"Certainly! Below is a solution.\n\n{code}\n\nThis runs in linear time.\n"
    return (
        f"```python\n{code}\n\n\nassert callable({entry})\n\n"
        f'if __name__ == "__main__":\n    print({entry}.__name__)\n```\n'
        "The asserts above are my own checks."
    )


MUTANT_BODY = {
    "none": "    return None\n",
    "off_by_one": (
        "    r = _reference(*args, **kwargs)\n"
        "    if isinstance(r, bool):\n        return not r\n"
        "    if isinstance(r, (int, float)):\n        return r + 1\n"
        "    if isinstance(r, str):\n        return r + 'x'\n"
        "    if isinstance(r, list):\n        return r + [None]\n"
        "    if isinstance(r, tuple):\n        return r + (None,)\n"
        "    return None\n"
    ),
    "raise": "    raise ValueError('mutant')\n",
    "always_equal": "    return AlwaysEqual()\n",
}
ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__
"""


def mutant(code: str, entry: str, kind: str) -> str:
    """A wrong solution a model could write: the reference renamed ``_reference`` (calls to it,
    recursive ones included, renamed too) and a new ``entry`` that breaks its answer."""
    renamed, n = re.subn(rf"\bdef {re.escape(entry)}\(", "def _reference(", code)
    assert n >= 1, entry
    renamed = re.sub(rf"\b{re.escape(entry)}\(", "_reference(", renamed)
    helpers = ALWAYS_EQUAL if kind == "always_equal" else ""
    return f"{renamed}\n{helpers}\n\ndef {entry}(*args, **kwargs):\n{MUTANT_BODY[kind]}"


def same_program(code: str):
    """A test of whether other code is ``code``'s program: the same syntax tree (blank lines and
    comments aside), so the same behaviour under the same tests."""
    tree = ast.dump(ast.parse(code))
    return lambda other: ast.dump(ast.parse(other)) == tree


# -- running the commands -----------------------------------------------------------------------
def run(*argv: str | Path, cwd: Path, env: dict | None = None) -> str:
    argv = tuple(map(str, argv))
    proc = subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=1200,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@dataclass
class Stage:
    name: str
    dir: Path
    problems: list[dict]
    samples: list[dict]  # after extraction: raw + solution
    records: dict[str, dict]  # sample_id -> execution record
    scores: dict[str, dict]  # kind -> codedpo score's scores.json (over the kind's problems)


def eval_stage(name: str, spec: dict, workdir: Path, plus_expected) -> Stage:
    workdir.mkdir(parents=True, exist_ok=True)
    problems_path = workdir / "problems.jsonl"
    source = SHARED / SHARED_FILE[Path(spec["path"]).name]
    run(BIN / "codedpo", "prepare", "--source", str(source), "--format", spec["format"],
        "--prompt-template", spec["prompt_template"], "--out", str(problems_path),
        cwd=REPO)  # fmt: skip
    expected = workdir / "expected.json"
    if spec["format"] in ("humaneval_plus", "mbpp_plus"):
        plus_expected(spec["format"], expected)  # computed once per session, by this command
    # As rule compute_expected runs it for a benchmark: every reference is checked too.
    run(BIN / "codedpo", "execute", "--problems", str(problems_path), "--expected", str(expected),
        "--expected-only", "--check-references", *EXEC_FLAGS, cwd=REPO)  # fmt: skip
    problems = read_jsonl(problems_path)
    subset = {p["task_id"] for p in problems[::SUBSET_STEP]} if name in EVALPLUS else set()

    raw = []
    for i, p in enumerate(problems):
        kinds = KINDS if p["task_id"] in subset else ("canonical",)
        for k, kind in enumerate(kinds):
            code = p["canonical_solution"]
            if kind != "canonical":
                code = mutant(code, p["entry_point"], kind)
            response = as_response(code, p["entry_point"], i + k)
            raw.append({"task_id": p["task_id"], "sample_id": f"{p['task_id']}#{kind}",
                        "kind": kind, "raw": response})  # fmt: skip
    raw_path, samples_path = workdir / "raw.jsonl", workdir / "samples.jsonl"
    write_jsonl(raw_path, raw)
    run(sys.executable, "-m", "codedpo", "extract", "--problems", str(problems_path),
        "--samples", str(raw_path), "--out", str(samples_path), cwd=REPO)  # fmt: skip
    samples = read_jsonl(samples_path)
    if subset:  # HumanEval+ and MBPP+ (the module docstring says which run, and why)
        program = {p["task_id"]: same_program(p["canonical_solution"]) for p in problems}
        run_here = [s for s in samples if s["task_id"] in subset
                    or not program[s["task_id"]](s["solution"])]  # fmt: skip
        samples_path = workdir / "samples.executed.jsonl"
        write_jsonl(samples_path, run_here)
    executions = workdir / "executions.jsonl"
    run(BIN / "codedpo", "execute", "--problems", str(problems_path), "--expected", str(expected),
        "--samples", str(samples_path), "--out", str(executions), "--fast-check", *EXEC_FLAGS,
        cwd=REPO)  # fmt: skip
    records = {r["sample_id"]: r for r in read_jsonl(executions)}

    # One greedy response per problem, as the eval rules score it: one scores.json per kind.
    scores = {}
    for kind in KINDS:
        ids = {s["task_id"] for s in samples if s["kind"] == kind and s["sample_id"] in records}
        if not ids:
            continue
        kdir = workdir / kind
        kdir.mkdir(exist_ok=True)
        write_jsonl(kdir / "problems.jsonl", [p for p in problems if p["task_id"] in ids])
        ran = [records[s["sample_id"]] for s in samples
               if s["kind"] == kind and s["sample_id"] in records]  # fmt: skip
        write_jsonl(kdir / "executions.jsonl", ran)
        run(BIN / "codedpo", "score", "--problems", str(kdir / "problems.jsonl"),
            "--executions", str(kdir / "executions.jsonl"), "--benchmark", name,
            "--policy", "reference", "--variant", "base", "--out", str(kdir / "scores.json"),
            cwd=REPO)  # fmt: skip
        scores[kind] = json.loads((kdir / "scores.json").read_text())
    return Stage(name, workdir, problems, samples, records, scores)


@pytest.fixture(scope="module")
def stages(tmp_path_factory, plus_expected) -> dict[str, Stage]:
    root = tmp_path_factory.mktemp("eval-stage")
    return {name: eval_stage(name, spec, root / name, plus_expected)
            for name, spec in paper_benchmarks().items()}  # fmt: skip


# -- 1. canonical solutions score 1.0 ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "count"),
    [("humaneval", 164), ("humaneval_plus", 164), ("mbpp", 500), ("mbpp_plus", 378)],
)
def test_canonical_solutions_wrapped_as_responses_score_one(stages, name, count):
    stage = stages[name]
    score = stage.scores["canonical"]
    extracted = [s for s in stage.samples if s["kind"] == "canonical"]
    assert len(extracted) == count
    if name in EVALPLUS:
        # not run here: those whose extracted code is the canonical program (module docstring)
        ran = {s["task_id"] for s in extracted if s["sample_id"] in stage.records}
        program = {p["task_id"]: same_program(p["canonical_solution"]) for p in stage.problems}
        assert all(program[s["task_id"]](s["solution"]) for s in extracted
                   if s["task_id"] not in ran)  # fmt: skip
        assert ran >= {p["task_id"] for p in stage.problems[::SUBSET_STEP]}
        print(f"{name}: {len(ran)} of {count} canonical responses executed here")
        count = len(ran)
    failed = {
        sid: (r["status"], (r.get("first_failure") or {}).get("message", "")[:200])
        for sid, r in stage.records.items()
        if sid.endswith("#canonical") and r["status"] != "passed"
    }
    assert not failed, failed
    assert score["total"] == count and score["passed"] == count and score["pass_at_1"] == 1.0
    # the prompts are the paper config's templates, not the datasets' own
    template = yaml.safe_load((REPO / paper_benchmarks()[name]["prompt_template"]).read_text())
    first_line = template["template"].split("\n")[0].split("{")[0]
    assert all(p["prompt"].startswith(first_line) or "{examples}" in template["template"]
               for p in stage.problems)  # fmt: skip
    assert all(p["prompt"] != p["meta"]["original_prompt"] for p in stage.problems)


def test_raw_response_and_sanitized_code_are_both_kept(stages):
    for stage in stages.values():
        for s in stage.samples:
            assert s["raw"] and s["solution"] and s["solution"] != s["raw"]
            # chatter, fences, the model's own asserts and demo are not in the executed code
            for noise in ("```", "[PYTHON]", "Certainly!", "assert callable(", "__main__"):
                assert noise not in s["solution"], (s["sample_id"], noise)


# -- 2. mutants score as EvalPlus scores them ----------------------------------------------------
def evalplus_verdicts(stage: Stage) -> dict[str, tuple[str, str]]:
    """sample_id -> (base_status, plus_status) from ``evalplus.evaluate`` on the same code."""
    dataset, variable = EVALPLUS[stage.name]
    source = SHARED / SHARED_FILE[Path(paper_benchmarks()[stage.name]["path"]).name]
    ids = {s["task_id"] for s in stage.samples if s["kind"] != "canonical"}
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip() and json.loads(line)["task_id"] in ids]
    data = stage.dir / f"evalplus-{dataset}.jsonl"
    data.write_text("".join(lines))
    chosen = [s for s in stage.samples if s["task_id"] in ids]
    samples = stage.dir / "evalplus-samples.jsonl"
    write_jsonl(samples, [{"task_id": s["task_id"], "solution": s["solution"]} for s in chosen])
    # EvalPlus keeps its ground truth in ~/.cache/evalplus, keyed by the dataset file's hash.
    run(sys.executable, "-m", "evalplus.evaluate", "--dataset", dataset,
        "--samples", str(samples), "--parallel", "2", "--i-just-wanna-run",
        cwd=stage.dir, env={variable: str(data)})  # fmt: skip
    results = json.loads((stage.dir / "evalplus-samples_eval_results.json").read_text())["eval"]
    seen: Counter = Counter()
    out = {}
    for s in chosen:  # EvalPlus lists a task's samples in file order
        r = results[s["task_id"]][seen[s["task_id"]]]
        seen[s["task_id"]] += 1
        out[s["sample_id"]] = (r["base_status"], r["plus_status"])
    return out


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import evalplus"], capture_output=True).returncode,
    reason="EvalPlus is not installed (pip install -e '.[bench]')",
)
@pytest.mark.parametrize("name", list(EVALPLUS))
def test_mutants_score_as_evalplus_scores_them(stages, name):
    stage = stages[name]
    theirs = evalplus_verdicts(stage)
    fooled, faulty, disagree = [], [], []
    for s in stage.samples:
        if s["sample_id"] not in theirs:
            continue
        evalplus_pass = theirs[s["sample_id"]] == ("pass", "pass")
        ours_pass = stage.records[s["sample_id"]]["status"] == "passed"
        if evalplus_pass == ours_pass:
            continue
        if s["kind"] == "always_equal" and evalplus_pass:
            fooled.append(s["task_id"])
        elif s["kind"] == "canonical" and ours_pass:
            faulty.append((s["task_id"], theirs[s["sample_id"]]))
        else:
            disagree.append((s["sample_id"], theirs[s["sample_id"]],
                             stage.records[s["sample_id"]]["status"]))  # fmt: skip
    print(f"{name}: EvalPlus fooled by __eq__ on {len(fooled)} tasks; "
          f"fails canonical: {faulty}")  # fmt: skip
    assert not disagree, disagree
    # ours is never fooled: the __eq__ mutant fails every task
    subset = {s["task_id"] for s in stage.samples if s["kind"] == "always_equal"}
    assert stage.scores["always_equal"]["passed"] == 0
    assert stage.scores["always_equal"]["total"] == len(subset)
    # the documented EvalPlus faults only: HumanEval/32 (0.3.1's bug), MBPP+ time-limit flakes
    known = {"HumanEval/32", "Mbpp/255", "Mbpp/392", "Mbpp/630"}
    assert {t for t, _ in faulty} <= known, faulty
    # per kind, our pass@1 is EvalPlus's, but for the tasks EvalPlus gets wrong
    for kind in ("none", "off_by_one", "raise"):
        theirs_passed = sum(
            theirs[s["sample_id"]] == ("pass", "pass") for s in stage.samples if s["kind"] == kind
        )
        assert stage.scores[kind]["passed"] == theirs_passed, kind
