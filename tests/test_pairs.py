"""Preference pairs and the RFT set from executed samples."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from codedpo.io import InputError
from codedpo.pairs.build import build_pairs, main
from codedpo.problems.load import load_problems
from codedpo.records import load_records


# Valid problems (the problems file's schema): one call test each; pairs read only the prompt.
def problems(*prompts: tuple[str, str]) -> dict[str, dict]:
    return {
        task_id: {"task_id": task_id, "prompt": prompt, "entry_point": "f",
                  "tests": {"kind": "call", "cases": [{"input": [1], "output": 1}]}}
        for task_id, prompt in prompts
    }  # fmt: skip


PROBLEMS = problems(
    ("t/mixed", "Write mixed()."),
    ("t/all", "Write all_pass()."),
    ("t/none", "Write none_pass()."),
    ("t/unsampled", "Nobody sampled this."),
    ("t/wide", "Write wide()."),
)

# (task_id, index, status); raw text is unique per sample unless said otherwise.
PLAN = [
    ("t/mixed", 0, "passed"),
    ("t/mixed", 1, "failed"),
    ("t/mixed", 2, "passed"),
    ("t/mixed", 3, "timeout"),
    ("t/mixed", 4, "sandbox_error"),
    ("t/all", 0, "passed"),
    ("t/all", 1, "passed"),
    ("t/all", 2, "passed"),
    ("t/none", 0, "syntax_error"),
    ("t/none", 1, "runtime_error"),
    ("t/none", 2, "sandbox_error"),
    *[("t/wide", i, "passed") for i in range(4)],
    *[("t/wide", i, "memory_exceeded" if i % 2 else "output_exceeded") for i in range(4, 8)],
]


def make(plan=PLAN, dup_raw: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    samples, executions = [], []
    for task_id, index, status in plan:
        sid = f"{task_id}/{index}"
        raw = (dup_raw or {}).get(sid, f"```python\n# {sid} {status}\n```")
        samples.append(
            {
                "task_id": task_id,
                "sample_id": sid,
                "index": index,
                "raw": raw,
                "solution": raw.strip("`python\n"),
                "policy": "demo-a",
            }
        )
        executions.append({"task_id": task_id, "sample_id": sid, "status": status})
    return samples, executions


def status_map(executions: list[dict]) -> dict[str, str]:
    return {e["sample_id"]: e["status"] for e in executions}


def test_chosen_passed_rejected_failed_and_format() -> None:
    samples, executions = make()
    pairs, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    statuses = status_map(executions)
    raw_of = {s["sample_id"]: s["raw"] for s in samples}
    assert [p["task_id"] for p in pairs] == ["t/mixed", "t/wide"]
    for p in pairs:
        assert statuses[p["chosen_id"]] == "passed"
        assert statuses[p["rejected_id"]] not in ("passed", "sandbox_error")
        assert p["rejected_status"] == statuses[p["rejected_id"]]
        assert p["prompt"] == [{"role": "user", "content": PROBLEMS[p["task_id"]]["prompt"]}]
        assert p["chosen"] == [{"role": "assistant", "content": raw_of[p["chosen_id"]]}]
        assert p["rejected"] == [{"role": "assistant", "content": raw_of[p["rejected_id"]]}]
        assert set(p) == {
            "prompt",
            "chosen",
            "rejected",
            "task_id",
            "chosen_id",
            "rejected_id",
            "rejected_status",
            "strategy",
            "chosen_score",
            "rejected_score",
            "margin",
        }
        # These hand-made records carry no test counts: no fraction score, no margin.
        assert p["strategy"] == "random" and p["margin"] is None
    assert stats["pairs"] == 2 and stats["problems_with_pairs"] == 2


def test_rft_is_every_distinct_passing_response() -> None:
    samples, executions = make(dup_raw={"t/all/1": "same", "t/all/2": "same"})
    _, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    statuses = status_map(executions)
    assert all(statuses[r["sample_id"]] == "passed" for r in rft)
    by_task = {}
    for r in rft:
        by_task.setdefault(r["task_id"], []).append(r["sample_id"])
    # t/all has three passes but two identical texts.
    assert by_task == {
        "t/mixed": ["t/mixed/0", "t/mixed/2"],
        "t/all": ["t/all/0", "t/all/1"],
        "t/wide": [f"t/wide/{i}" for i in range(4)],
    }
    assert stats["rft_examples"] == len(rft) == 8
    r = rft[0]
    assert r["prompt"] == [{"role": "user", "content": "Write mixed()."}]
    assert r["completion"][0]["role"] == "assistant"
    assert set(r) == {"prompt", "completion", "task_id", "sample_id"}


def test_stats_and_histogram() -> None:
    samples, executions = make()
    _, _, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert stats["problems"] == 5 and stats["problems_sampled"] == 4
    assert stats["samples"] == len(PLAN) == 19
    assert stats["sandbox_errors"] == 2
    assert stats["status_counts"] == {
        "passed": 9,
        "failed": 1,
        "runtime_error": 1,
        "syntax_error": 1,
        "no_code": 0,
        "timeout": 1,
        "memory_exceeded": 2,
        "output_exceeded": 2,
        "sandbox_error": 2,
        "problem_error": 0,
    }
    assert sum(stats["status_counts"].values()) == stats["samples"]
    assert stats["pass_histogram"] == {"0/3": 1, "2/5": 1, "3/3": 1, "4/8": 1}
    assert stats["problems_all_passed"] == 1 and stats["problems_none_passed"] == 1


def test_sandbox_errors_are_never_paired() -> None:
    # Only sandbox errors beside the passes: no pair, the errors are counted.
    plan = [("t/mixed", 0, "passed"), ("t/mixed", 1, "sandbox_error"), ("t/mixed", 2, "passed")]
    samples, executions = make(plan)
    for seed in range(20):
        pairs, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=seed)
        assert pairs == [] and len(rft) == 2 and stats["sandbox_errors"] == 1


def test_deterministic_and_independent_of_order() -> None:
    samples, executions = make()
    first = build_pairs(PROBLEMS, samples, executions, seed=7)
    assert build_pairs(PROBLEMS, samples, executions, seed=7) == first
    rng = random.Random(0)
    for _ in range(5):
        s2, e2 = samples[:], executions[:]
        rng.shuffle(s2)
        rng.shuffle(e2)
        assert build_pairs(PROBLEMS, s2, e2, seed=7) == first


def test_seed_changes_the_draw() -> None:
    samples, executions = make()
    draws = {
        tuple(
            (p["chosen_id"], p["rejected_id"])
            for p in build_pairs(PROBLEMS, samples, executions, seed=seed)[0]
        )
        for seed in range(30)
    }
    # t/wide alone has 16 possible pairs: 30 seeds giving one draw would mean the seed is unused.
    assert len(draws) > 5


def test_max_pairs_per_problem_gives_distinct_pairs() -> None:
    samples, executions = make()
    pairs, _, stats = build_pairs(PROBLEMS, samples, executions, seed=3, max_pairs_per_problem=5)
    wide = [(p["chosen_id"], p["rejected_id"]) for p in pairs if p["task_id"] == "t/wide"]
    mixed = [p for p in pairs if p["task_id"] == "t/mixed"]
    assert len(wide) == len(set(wide)) == 5
    assert len(mixed) == 4  # only 2 passed x 2 failed exist
    assert stats["pairs"] == 9 and stats["problems_with_pairs"] == 2
    with pytest.raises(ValueError, match="max_pairs_per_problem"):
        build_pairs(PROBLEMS, samples, executions, seed=3, max_pairs_per_problem=0)


def test_identical_text_that_passed_and_failed_is_not_rejected() -> None:
    plan = [("t/mixed", 0, "passed"), ("t/mixed", 1, "timeout")]
    samples, executions = make(plan, dup_raw={"t/mixed/0": "x", "t/mixed/1": "x"})
    pairs, _, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert pairs == [] and stats["flaky_failures_skipped"] == 1


# --- errors, through the file loaders so messages carry file:line: field -----------------------


def write(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def load(tmp_path: Path, samples: list[dict], executions: list[dict]):
    return (
        load_records([write(tmp_path / "samples.jsonl", samples)]),
        load_records([write(tmp_path / "executions.jsonl", executions)]),
    )


def test_sample_without_execution_record(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples, executions[:3] + executions[4:])
    with pytest.raises(
        InputError,
        match=r"samples\.jsonl:4: field 'sample_id': no execution "
        r"record for 't/mixed/3'",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_duplicate_sample_id(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples + [samples[1]], executions)
    n = len(samples) + 1
    with pytest.raises(
        InputError,
        match=rf"samples\.jsonl:{n}: field 'sample_id': duplicate "
        r"'t/mixed/1' \(first at .*samples\.jsonl:2\)",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_duplicate_execution_record(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples, executions + [executions[0]])
    with pytest.raises(InputError, match=r"executions\.jsonl:20: field 'sample_id': duplicate"):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_execution_record_without_sample(tmp_path: Path) -> None:
    samples, executions = make()
    orphan = {"task_id": "t/mixed", "sample_id": "t/mixed/99", "status": "passed"}
    s, e = load(tmp_path, samples, [orphan] + executions)
    with pytest.raises(
        InputError,
        match=r"executions\.jsonl:1: field 'sample_id': 't/mixed/99' "
        r"matches no sample",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


@pytest.mark.parametrize(
    ("where", "change", "message"),
    [
        ("executions", {"status": "crashed"}, r"executions\.jsonl:1: field 'status': 'crashed'"),
        ("executions", {"task_id": "t/all"}, r"executions\.jsonl:1: field 'task_id': 't/all'"),
        (
            "samples",
            {"task_id": "t/ghost"},
            r"samples\.jsonl:1: field 'task_id': 't/ghost' is "
            r"not in the problems file",
        ),
        ("samples", {"raw": None}, r"samples\.jsonl:1: field 'raw' must be str"),
    ],
)
def test_bad_fields(tmp_path: Path, where: str, change: dict, message: str) -> None:
    samples, executions = make()
    target = samples if where == "samples" else executions
    target[0] = {**target[0], **change}
    s, e = load(tmp_path, samples, executions)
    with pytest.raises(InputError, match=message):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_missing_prompt_names_problem_line(tmp_path: Path) -> None:
    record = {k: v for k, v in PROBLEMS["t/mixed"].items() if k != "prompt"}
    path = write(tmp_path / "problems.jsonl", [record])
    samples, executions = make(PLAN[:2])
    with pytest.raises(InputError, match=r"problems\.jsonl:1: .*'prompt' is a required property"):
        build_pairs(load_problems(path), samples, executions, seed=1)


def test_duplicate_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "problems.jsonl", [PROBLEMS["t/all"], PROBLEMS["t/all"]])
    with pytest.raises(InputError, match=r"problems\.jsonl:2: field 'task_id': duplicate"):
        load_problems(path)


def test_cli_with_shards(tmp_path: Path) -> None:
    samples, executions = make()
    problems = write(tmp_path / "problems.jsonl", list(PROBLEMS.values()))
    # Shards split differently for samples and executions: the join is by id, not position.
    s = [write(tmp_path / "s0.jsonl", samples[:7]), write(tmp_path / "s1.jsonl", samples[7:])]
    e = [
        write(tmp_path / "e0.jsonl", executions[:12]),
        write(tmp_path / "e1.jsonl", executions[12:]),
    ]
    out = tmp_path / "out"
    argv = [
        "--problems",
        problems,
        "--samples",
        *s,
        "--executions",
        *e,
        "--out-pairs",
        str(out / "pairs.jsonl"),
        "--out-rft",
        str(out / "rft.jsonl"),
        "--out-stats",
        str(out / "stats.json"),
        "--seed",
        "1",
    ]
    assert main(argv) == 0
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    expected, rft, _ = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert pairs == expected
    assert len((out / "rft.jsonl").read_text().splitlines()) == len(rft)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs"] == 2 and stats["config"] == {"seed": 1, "max_pairs_per_problem": 1}
    assert len(stats["inputs"]["samples"]) == 2 and len(stats["inputs"]["problems"]["sha256"]) == 64
    assert stats["date"]


# --- strategies, scores and margins, on records whose expected pair follows from the definition --

GRADED = problems(
    ("s/graded", "Write graded()."),
    ("s/nopass", "Write nopass()."),
    ("s/tie", "Write tie()."),
    ("s/hack", "Write hack()."),
)
# (task_id, name, status, tests passed of 5, observed)
GRADED_PLAN = [
    ("s/graded", "a", "passed", 5, []),
    ("s/graded", "b", "failed", 3, []),
    ("s/graded", "c", "runtime_error", 1, []),
    ("s/graded", "d", "syntax_error", 0, []),
    ("s/graded", "e", "timeout", 0, []),
    ("s/graded", "f", "sandbox_error", 0, []),
    ("s/nopass", "a", "failed", 4, []),
    ("s/nopass", "b", "runtime_error", 2, []),
    ("s/tie", "a", "failed", 2, []),
    ("s/tie", "b", "failed", 2, []),
    ("s/hack", "net", "passed", 5, ["network"]),
    ("s/hack", "ok", "passed", 5, []),
    ("s/hack", "peek", "failed", 0, ["read_hidden"]),
]


def graded(plan=GRADED_PLAN) -> tuple[list[dict], list[dict]]:
    samples, executions = [], []
    for task_id, name, status, passed, observed in plan:
        sid = f"{task_id}/{name}"
        samples.append({"task_id": task_id, "sample_id": sid, "raw": f"# {sid}", "solution": sid})
        executions.append(
            {"task_id": task_id, "sample_id": sid, "status": status, "passed": passed,
             "total": 5, "tests_run": 5, "first_failure": None, "observed": observed}
        )  # fmt: skip
    return samples, executions


def pairs_by_task(pairs: list[dict]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for p in pairs:
        out.setdefault(p["task_id"], set()).add((p["chosen_id"], p["rejected_id"]))
    return out


def draws(strategy: str, score: str = "fraction", seeds=range(40), **kw) -> dict[str, set]:
    """Every pair the strategy gives over many seeds, per problem."""
    samples, executions = graded()
    seen: dict[str, set] = {}
    for seed in seeds:
        pairs, _, _ = build_pairs(GRADED, samples, executions, seed=seed, strategy=strategy,
                                  score=score, **kw)  # fmt: skip
        for task, found in pairs_by_task(pairs).items():
            seen.setdefault(task, set()).update(found)
    return seen


def test_max_min_best_against_worst() -> None:
    # Fraction: the two 0/5 responses tie for worst; the sandbox error is nobody's.
    assert draws("max_min") == {
        "s/graded": {("s/graded/a", "s/graded/d"), ("s/graded/a", "s/graded/e")},
        # No response passed: the best partial answer against the worst.
        "s/nopass": {("s/nopass/a", "s/nopass/b")},
        # The flagged pass is never chosen; the flagged failure may be rejected.
        "s/hack": {("s/hack/ok", "s/hack/peek")},
    }
    # Rule reward: a syntax error (-1) is worse than a timeout (-0.6).
    assert draws("max_min", "rule")["s/graded"] == {("s/graded/a", "s/graded/d")}


def test_max_random_rejects_any_lower_score() -> None:
    seen = draws("max_random")
    assert seen["s/graded"] == {("s/graded/a", f"s/graded/{x}") for x in "bcde"}
    assert seen["s/nopass"] == {("s/nopass/a", "s/nopass/b")}
    assert "s/tie" not in seen  # equal scores: no preference


def test_random_is_the_paper_and_records_margins() -> None:
    samples, executions = graded()
    pairs, rft, stats = build_pairs(GRADED, samples, executions, seed=2, max_pairs_per_problem=9)
    assert pairs_by_task(pairs) == {
        "s/graded": {("s/graded/a", f"s/graded/{x}") for x in "bcde"},
        "s/hack": {("s/hack/ok", "s/hack/peek")},
    }
    margins = {(p["chosen_id"], p["rejected_id"]): p["margin"] for p in pairs}
    assert margins[("s/graded/a", "s/graded/b")] == 0.4  # 5/5 - 3/5
    assert margins[("s/graded/a", "s/graded/c")] == 0.8
    assert all(p["chosen_score"] == 1.0 for p in pairs)
    # The flagged pass is no RFT example either.
    assert [r["sample_id"] for r in rft] == ["s/graded/a", "s/hack/ok"]
    assert stats["hacks"]["flagged"] == 2 and stats["hacks"]["flagged_passed"] == 1
    assert stats["hacks"]["flagged_ids"] == {
        "read_hidden": ["s/hack/peek"],
        "network": ["s/hack/net"],
    }


def test_rule_margins_and_stats() -> None:
    samples, executions = graded()
    pairs, _, stats = build_pairs(GRADED, samples, executions, seed=1, strategy="max_min",
                                  score="rule")  # fmt: skip
    margins = {p["task_id"]: p["margin"] for p in pairs}
    # 1 - (-1); -0.3 - (-0.6); 1 - (-0.3)
    assert margins == {"s/graded": 2.0, "s/nopass": 0.3, "s/hack": 1.3}
    summary = stats["margins"]
    assert summary["n"] == 3 and summary["min"] == 0.3 and summary["max"] == 2.0
    assert summary["mean"] == round((2.0 + 0.3 + 1.3) / 3, 6)
    assert summary["quantiles"]["0.5"] == 1.3
    # Bins of 0.2 over [0, 2]: 0.3 in [0.2, 0.4), 1.3 in [1.2, 1.4), 2.0 in the last.
    assert summary["histogram"]["counts"] == [0, 1, 0, 0, 0, 0, 1, 0, 0, 1]
    assert stats["rejected_statuses"]["syntax_error"] == 1
    assert stats["rejected_statuses"]["runtime_error"] == 1
    assert stats["rejected_statuses"]["failed"] == 1
    assert sum(stats["rejected_statuses"].values()) == stats["pairs"] == 3
    assert stats["chosen_statuses"] == {"passed": 2, "failed": 1}
    assert (stats["strategy"], stats["score"]) == ("max_min", "rule")


def test_by_error_rejects_only_the_given_verdicts() -> None:
    samples, executions = make()
    for seed in range(10):
        pairs, _, stats = build_pairs(PROBLEMS, samples, executions, seed=seed,
                                      strategy="by_error", rejected_verdicts=["memory_exceeded"],
                                      max_pairs_per_problem=3)  # fmt: skip
        assert {p["rejected_status"] for p in pairs} == {"memory_exceeded"}
        assert {p["task_id"] for p in pairs} == {"t/wide"} and len(pairs) == 3
        assert stats["rejected_verdicts"] == ["memory_exceeded"]
    seen = draws("by_error", rejected_verdicts=["syntax_error", "timeout"])
    assert seen == {"s/graded": {("s/graded/a", "s/graded/d"), ("s/graded/a", "s/graded/e")}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "by_error"}, "needs at least one"),
        ({"strategy": "by_error", "rejected_verdicts": ["passed"]}, "not failures"),
        ({"strategy": "by_error", "rejected_verdicts": ["sandbox_error"]}, "not failures"),
        ({"rejected_verdicts": ["failed"]}, "only for the by_error"),
        ({"strategy": "best"}, "strategy must be"),
        ({"score": "reward"}, "score must be"),
    ],
)
def test_bad_strategy_options(options: dict, message: str) -> None:
    samples, executions = graded()
    with pytest.raises(ValueError, match=message):
        build_pairs(GRADED, samples, executions, seed=1, **options)


def test_k_pairs_are_distinct_combinations() -> None:
    samples, executions = graded()
    pairs, _, _ = build_pairs(GRADED, samples, executions, seed=4, strategy="max_random",
                              max_pairs_per_problem=3)  # fmt: skip
    found = [(p["chosen_id"], p["rejected_id"]) for p in pairs if p["task_id"] == "s/graded"]
    assert len(found) == len(set(found)) == 3
    # max_min has only two combinations here (one best, two tied worst).
    pairs, _, _ = build_pairs(GRADED, samples, executions, seed=4, strategy="max_min",
                              max_pairs_per_problem=3)  # fmt: skip
    assert len([p for p in pairs if p["task_id"] == "s/graded"]) == 2


def test_score_strategy_orders_and_seeds() -> None:
    samples, executions = graded()
    first = build_pairs(GRADED, samples, executions, seed=5, strategy="max_random")
    rng = random.Random(1)
    s2, e2 = samples[:], executions[:]
    rng.shuffle(s2)
    rng.shuffle(e2)
    assert build_pairs(GRADED, s2, e2, seed=5, strategy="max_random") == first


def test_score_strategies_need_test_counts(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples, executions)
    with pytest.raises(InputError, match=r"executions\.jsonl:1: field 'passed'"):
        build_pairs(PROBLEMS, s, e, seed=1, strategy="max_min")
    # The rule reward needs only the verdict.
    pairs, _, _ = build_pairs(PROBLEMS, s, e, seed=1, strategy="max_min", score="rule")
    assert {p["task_id"] for p in pairs} == {"t/mixed", "t/wide", "t/none"}


def test_cli_strategy_flags(tmp_path: Path, capsys) -> None:
    samples, executions = graded()
    problems = write(tmp_path / "problems.jsonl", list(GRADED.values()))
    base = ["--problems", problems, "--samples", write(tmp_path / "s.jsonl", samples),
            "--executions", write(tmp_path / "e.jsonl", executions), "--seed", "1",
            "--out-pairs", str(tmp_path / "p.jsonl"), "--out-rft", str(tmp_path / "r.jsonl"),
            "--out-stats", str(tmp_path / "stats.json")]  # fmt: skip
    assert main([*base, "--strategy", "by_error", "--rejected-verdict", "failed"]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["strategy"] == "by_error" and stats["rejected_verdicts"] == ["failed"]
    assert stats["pairs"] == 2  # a against b (s/graded), ok against peek (s/hack)
    assert main([*base, "--strategy", "max_min", "--score", "rule"]) == 0
    pairs = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {p["margin"] for p in pairs} == {2.0, 0.3, 1.3}
    for bad in (["--strategy", "by_error"], ["--rejected-verdict", "failed"],
                ["--max-pairs-per-problem", "0"]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main([*base, *bad])
        assert exc.value.code == 2
    assert "--rejected-verdict" in capsys.readouterr().err
