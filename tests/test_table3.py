"""Table 3 (DPO against GRPO, with budgets) and ``codedpo budget``: scores written by ``codedpo
score`` from records the sandbox wrote (tests/scored_runs.py), budgets by ``codedpo budget`` from
sampling and execution records and train summaries written here."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).parent))
from scored_runs import BENCHMARK, TASKS, execute_candidates, score_run  # noqa: E402

from codedpo.evaluation.score_files import DEFAULT_RUN, Run  # noqa: E402
from codedpo.io import InputError  # noqa: E402
from codedpo.reporting import budget, table3  # noqa: E402
from codedpo.reporting.tables import build_tables  # noqa: E402

MODEL = "demo-a"
N = len(TASKS)
# Problems each run's greedy answer solves. (variant, arm, recipe, round): None = the default.
SOLVED = {
    ("base", None, None, None): {0, 1, 2},
    ("rft", None, None, None): {0, 1, 2, 3},
    ("dpo", None, None, None): {0, 1, 2, 3, 4},
    ("dpo", None, None, 2): set(range(8)),
    ("grpo", "pass_all", "grpo", None): set(range(7)),
    ("grpo", "rule", "grpo-rule", None): {1, 2, 3, 10},
}
ROWS = ["base", "+ RFT", "+ DPO", "+ DPO r2", "+ GRPO pass_all", "+ GRPO rule"]
# Sampling records: num_tokens of each response; execution records: duration_s of each sample.
TOKENS = {1: [10, 20, 30], 2: [5, 7]}
DURATIONS = {1: [0.5, 0.25, 1.0], 2: [0.125, 0.125]}
GRPO_BUDGET = {"rewards": ["pass_all"], "responses": 12, "completion_tokens": 600,
               "executor_seconds": 3.5, "reward_seconds": 4.0, "attempts": 2,
               "train_seconds": 350.0}  # fmt: skip
SUMMARIES = {
    "rft": {"method": "rft", "wall_time_s": 12.5, "num_processes": 1, "gpus": 0},
    "dpo1": {"method": "dpo", "wall_time_s": 100.0, "num_processes": 2, "gpus": 2},
    "dpo2": {"method": "dpo", "wall_time_s": 80.0, "num_processes": 2, "gpus": 2},
    "grpo": {"method": "grpo", "wall_time_s": 360.0, "num_processes": 1, "gpus": 1,
             "budget": GRPO_BUDGET},
    # Written before summaries said how many GPUs: no GPU hours.
    "rule": {"method": "grpo", "wall_time_s": 90.0, "num_processes": 1,
             "budget": {**GRPO_BUDGET, "responses": 8, "completion_tokens": 400,
                        "executor_seconds": 2.0, "attempts": 1}},
}  # fmt: skip
# Each row's budget: responses, tokens, executor s, training s, GPU h.
BUDGETS = {
    "base": [0, 0, 0.0, 0.0, math.nan],
    "+ RFT": [3, 60, 1.75, 12.5, math.nan],
    "+ DPO": [3, 60, 1.75, 100.0, 200 / 3600],
    "+ DPO r2": [5, 72, 2.0, 180.0, 360 / 3600],
    "+ GRPO pass_all": [12, 600, 3.5, 360.0, 360 / 3600],
    "+ GRPO rule": [8, 400, 2.0, 90.0, math.nan],
}


def _jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> list[str]:
    workdir = tmp_path_factory.mktemp("table3")
    problems, records = execute_candidates(workdir / "executed")
    paths = []
    for (variant, arm, recipe, round_), solved in SOLVED.items():
        extra = () if arm is None else ("--arm", arm)
        extra += () if recipe is None else ("--recipe", recipe)
        extra += () if round_ is None else ("--round", str(round_))
        out = workdir / f"{variant}-{arm}-{recipe}-{round_}"
        paths.append(str(score_run(out, problems, records, policy=MODEL, variant=variant,
                                   solved=solved, extra=extra)))  # fmt: skip
    return paths


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Sampling and execution records of two DPO rounds, and train summaries."""
    d = tmp_path_factory.mktemp("inputs")
    files = {}
    for round_ in (1, 2):
        files[f"samples{round_}"] = _jsonl(d / f"samples{round_}.jsonl", [
            {"task_id": f"train/{i}", "sample_id": f"train/{i}/0", "raw": "x", "solution": "x",
             "finish_reason": "stop", "num_tokens": n}
            for i, n in enumerate(TOKENS[round_])
        ])  # fmt: skip
        files[f"executions{round_}"] = _jsonl(d / f"executions{round_}.jsonl", [
            {"task_id": f"train/{i}", "sample_id": f"train/{i}/0", "status": "passed",
             "duration_s": s}
            for i, s in enumerate(DURATIONS[round_])
        ])  # fmt: skip
    for name, summary in SUMMARIES.items():
        (d / name).mkdir()
        path = d / name / "train_summary.json"
        path.write_text(json.dumps(summary))
        files[name] = str(path)
    return files


def budget_argv(inputs: dict[str, str]) -> dict[str, list[str]]:
    f = inputs
    return {
        "base": ["--variant", "base"],
        "rft": ["--variant", "rft", "--samples", f["samples1"], "--executions", f["executions1"],
                "--train-summaries", f["rft"]],
        "dpo1": ["--variant", "dpo", "--samples", f["samples1"],
                 "--executions", f["executions1"], "--train-summaries", f["dpo1"]],
        "dpo2": ["--variant", "dpo", "--round", "2", "--samples", f["samples1"], f["samples2"],
                 "--executions", f["executions1"], f["executions2"],
                 "--train-summaries", f["dpo1"], f["dpo2"]],
        "grpo": ["--variant", "grpo", "--arm", "pass_all", "--recipe", "grpo",
                 "--train-summaries", f["grpo"]],
        "rule": ["--variant", "grpo", "--arm", "rule", "--recipe", "grpo-rule",
                 "--train-summaries", f["rule"]],
    }  # fmt: skip


@pytest.fixture(scope="module")
def budgets(inputs, tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("budgets")
    out = {}
    for name, argv in budget_argv(inputs).items():
        out[name] = str(d / f"{name}.json")
        assert budget.main(["--policy", MODEL, *argv, "--out", out[name]]) == 0
    return out


def load(paths: list[str]) -> list[dict]:
    return [{**json.loads(Path(p).read_text()), "_path": p} for p in paths]


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_budget_sums_the_files_it_is_given(budgets, inputs) -> None:
    dpo2 = json.loads(Path(budgets["dpo2"]).read_text())
    assert list(dpo2) == ["policy", "variant", "pairs_from", "arm", "recipe", "round",
                          "responses", "completion_tokens", "executor_seconds", "train_seconds",
                          "gpu_hours", "attempts", "inputs", "date"]  # fmt: skip
    assert {k: dpo2[k] for k in list(dpo2)[:12]} == {
        "policy": MODEL, "variant": "dpo", "pairs_from": MODEL, "arm": "paper", "recipe": "dpo",
        "round": 2, "responses": 5, "completion_tokens": 10 + 20 + 30 + 5 + 7,
        "executor_seconds": 2.0, "train_seconds": 180.0, "gpu_hours": pytest.approx(0.1),
        "attempts": None,
    }  # fmt: skip
    order = ["samples1", "samples2", "executions1", "executions2", "dpo1", "dpo2"]
    assert dpo2["inputs"] == [
        {"kind": kind, "path": inputs[name], "sha256": sha256(inputs[name])}
        for kind, name in zip(["samples"] * 2 + ["executions"] * 2 + ["train_summary"] * 2, order,
                              strict=True)
    ]  # fmt: skip
    grpo = json.loads(Path(budgets["grpo"]).read_text())
    assert "pairs_from" not in grpo
    assert (grpo["arm"], grpo["recipe"], grpo["round"]) == ("pass_all", "grpo", 1)
    counts = (grpo["responses"], grpo["completion_tokens"], grpo["executor_seconds"])
    assert counts == (12, 600, 3.5)  # the summary's budget: its rollouts
    assert (grpo["train_seconds"], grpo["gpu_hours"], grpo["attempts"]) == (360.0, 0.1, 2)
    rule = json.loads(Path(budgets["rule"]).read_text())
    assert (rule["gpu_hours"], rule["attempts"], rule["responses"]) == (None, 1, 8)
    base = json.loads(Path(budgets["base"]).read_text())
    assert [base[k] for k in ("responses", "completion_tokens", "executor_seconds",
                              "train_seconds", "gpu_hours", "inputs")] == [0, 0, 0.0, 0.0, None,
                                                                           []]  # fmt: skip
    assert json.loads(Path(budgets["rft"]).read_text())["gpu_hours"] is None  # gpus 0: on CPU


def test_budgets_are_keyed_as_scores_are(budgets) -> None:
    keyed = budget.read_budgets(list(budgets.values()))
    assert set(keyed) == {
        (MODEL, "base", None, DEFAULT_RUN),
        (MODEL, "rft", None, DEFAULT_RUN),
        (MODEL, "dpo", MODEL, DEFAULT_RUN),
        (MODEL, "dpo", MODEL, Run("paper", "dpo", 2)),
        (MODEL, "grpo", None, Run("pass_all", "grpo", 1)),
        (MODEL, "grpo", None, Run("rule", "grpo-rule", 1)),
    }
    with pytest.raises(InputError, match=rf"{budgets['dpo2']}: two budgets for {MODEL} dpo r2 "
                       rf"\(pairs from {MODEL}\); the other is {budgets['dpo2']}"):  # fmt: skip
        budget.read_budgets([budgets["dpo2"], budgets["dpo2"]])


def test_table3_rows_differences_and_budgets(scores, budgets) -> None:
    table = table3.build_table3(
        load(scores), budget.read_budgets(list(budgets.values())), [MODEL], [BENCHMARK]
    )
    assert [m for _, m in table.index] == ROWS
    b = BENCHMARK
    solved = dict(zip(ROWS, SOLVED.values(), strict=True))
    assert table[b].tolist() == pytest.approx([len(s) / N for s in solved.values()], abs=5e-4)
    for row, won in solved.items():
        got = table.loc[(MODEL, row)]
        for reference, prefix in (("base", b), ("+ DPO", f"{b} vs DPO")):
            if row in ("base", reference):
                assert math.isnan(got[f"{prefix} diff"]) and math.isnan(got[f"{prefix} p"])
                continue
            gains, losses = len(won - solved[reference]), len(solved[reference] - won)
            assert got[f"{prefix} diff"] == pytest.approx((gains - losses) / N, abs=5e-4)
            assert got[f"{prefix} diff low"] <= got[f"{prefix} diff"] <= got[f"{prefix} diff high"]
            assert got[f"{prefix} p"] == pytest.approx(
                binomtest(gains, gains + losses).pvalue if gains + losses else 1.0
            )
    # The rule-reward arm gains problem 10 and loses 0 and 4 against DPO: behind it, not
    # significantly.
    rule = table.loc[(MODEL, "+ GRPO rule")]
    assert rule[f"{b} vs DPO diff"] == pytest.approx(-1 / N, abs=5e-4)
    assert rule[f"{b} vs DPO p"] == pytest.approx(binomtest(1, 3).pvalue)
    budget_part = table[list(table3.BUDGET_COLUMNS)]
    for row, expected in BUDGETS.items():
        # GPU hours are rounded to the second (6 decimals of an hour).
        assert budget_part.loc[(MODEL, row)].tolist() == pytest.approx(
            expected, abs=1e-6, nan_ok=True
        )
    per_benchmark = ["", " diff", " diff low", " diff high", " p", " vs DPO diff",
                     " vs DPO diff low", " vs DPO diff high", " vs DPO p"]  # fmt: skip
    assert list(table.columns) == [b + s for s in per_benchmark] + list(table3.BUDGET_COLUMNS)


def test_missing_scores_and_budgets_are_nan(scores, budgets) -> None:
    """Without the paper's DPO run's score there is nothing to compare with: the vs DPO columns
    stay, empty; a row without a budget has empty budget columns."""
    kept = [p for p, key in zip(scores, SOLVED, strict=True) if key != ("dpo", None, None, None)]
    some = budget.read_budgets([budgets[n] for n in ("base", "dpo2", "grpo")])
    table = table3.build_table3(load(kept), some, [MODEL], [BENCHMARK])
    assert [m for _, m in table.index] == ROWS  # the paper's DPO row stays, empty
    assert table[BENCHMARK].isna().tolist() == [False, False, True, False, False, False]
    assert table[f"{BENCHMARK} vs DPO diff"].isna().all()
    assert table["responses"].isna().tolist() == [False, True, True, False, False, True]


def test_table1_leaves_grpo_scores_out(scores) -> None:
    t1, _ = build_tables(load(scores), [MODEL], [BENCHMARK])
    assert [m for _, m in t1.index] == ["base", "+ RFT", "+ DPO", "+ DPO r2"]


def test_cli_writes_the_table_the_note_and_the_plot(scores, budgets, tmp_path: Path) -> None:
    out, png = tmp_path / "tables", tmp_path / "table3.png"
    note = "GRPO budget: 12 responses, matched to DPO with 1 round(s)"
    argv = ["--scores", *scores, "--budgets", *budgets.values(), "--models", MODEL,
            "--benchmarks", BENCHMARK, "--outdir", str(out), "--plot", str(png),
            "--bootstrap-resamples", "2000", "--budget-note", note]  # fmt: skip
    assert table3.main(argv) == 0
    csv = pd.read_csv(out / "table3.csv", keep_default_na=False)
    b = BENCHMARK
    assert list(csv.columns) == ["model", "method", b, f"{b} diff", f"{b} diff low",
                                 f"{b} diff high", f"{b} p", f"{b} vs DPO diff",
                                 f"{b} vs DPO diff low", f"{b} vs DPO diff high",
                                 f"{b} vs DPO p", "responses", "tokens", "executor s",
                                 "training s", "GPU h"]  # fmt: skip
    assert csv["method"].tolist() == ROWS
    assert csv["responses"].tolist() == [0, 3, 3, 5, 12, 8]
    assert csv["tokens"].tolist() == [0, 60, 60, 72, 600, 400]
    assert csv["GPU h"].tolist() == ["", "", "0.055556", "0.100000", "0.100000", ""]
    assert csv[f"{b} vs DPO p"].tolist()[:3] == ["", "1", ""]  # RFT: lost 1 of 1 discordant

    md = (out / "table3.md").read_text().splitlines()
    head = [c.strip() for c in md[0].split("|")[1:-1]]
    assert head == ["Model", b, f"{b} diff [95% CI]", f"{b} p", f"{b} vs DPO diff [95% CI]",
                    f"{b} vs DPO p", "responses", "tokens", "executor s", "training s",
                    "GPU h"]  # fmt: skip
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in md[2:8]]
    assert [c[0] for c in cells] == [MODEL, *ROWS[1:]]
    assert [c[-5:] for c in cells] == [
        ["0", "0", "0", "0", "-"],
        ["3", "60", "1.75", "12.5", "-"],
        ["3", "60", "1.75", "100", "0.0556"],
        ["5", "72", "2", "180", "0.1"],
        ["12", "600", "3.5", "360", "0.1"],
        ["8", "400", "2", "90", "-"],
    ]
    assert cells[4][2].startswith("+0.333 [+0.") and cells[4][2].endswith("*")  # 4 of 12 gained
    assert cells[2][4] == "-" and cells[0][2] == "-"
    assert len({len(line) for line in md[:8]}) == 1  # the columns line up
    assert "cumulative over rounds" in md[-1] and md[-1].endswith(note)
    assert "2000 resamples" in md[-1]

    tex = (out / "table3.tex").read_text().splitlines()
    assert tex[0].startswith("% Greedy pass@1") and tex[0].endswith(note)
    assert tex[2] == "\\begin{tabular}{l" + "r" * 10 + "}"
    assert tex[4].endswith(" & responses & tokens & executor s & training s & GPU h \\\\")
    assert tex[6].startswith("demo-a & ") and tex[6].endswith(" & 0 & 0 & 0 & 0 & -- \\\\")
    assert all(line.count(" & ") == 10 for line in tex if line.endswith(" \\\\"))

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_lines_start_at_the_base_model(scores, budgets) -> None:
    frame = table3.budget_frame(
        load(scores), budget.read_budgets(list(budgets.values())), [MODEL], [BENCHMARK]
    )
    lines = {
        line: list(zip(points["responses"], points["pass_at_1"], strict=True))
        for line, points in frame.sort_values("point", kind="stable").groupby("line", sort=False)
    }
    assert list(lines) == ["RFT", "DPO", "GRPO pass_all", "GRPO rule"]
    assert lines == {
        "RFT": [(0, 3 / N), (3, 4 / N)],
        "DPO": [(0, 3 / N), (3, 5 / N), (5, 8 / N)],
        "GRPO pass_all": [(0, 3 / N), (12, 7 / N)],
        "GRPO rule": [(0, 3 / N), (8, 4 / N)],
    }
    # A run without a budget is no point; a line with only the base model's is left out.
    some = budget.read_budgets([budgets["dpo2"], budgets["grpo"]])
    frame = table3.budget_frame(load(scores), some, [MODEL], [BENCHMARK])
    assert frame["line"].unique().tolist() == ["DPO", "GRPO pass_all"]
    assert frame[frame["line"] == "DPO"]["responses"].tolist() == [0, 5]


def _bad(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("flag", "name", "text", "message"),
    [
        ("--samples", "s.jsonl", '{"num_tokens": 3}\n{"num_tokens": 3\n',
         r"s\.jsonl:2: not valid JSON"),
        ("--samples", "s.jsonl", '{"num_tokens": 3}\n{"raw": "x"}\n',
         r"s\.jsonl:2: missing field 'num_tokens'"),
        ("--samples", "s.jsonl", '{"num_tokens": -1}\n',
         r"s\.jsonl:1: field 'num_tokens': -1 is not a count"),
        ("--executions", "e.jsonl", '{"duration_s": "1.5"}\n',
         r"e\.jsonl:1: field 'duration_s': '1\.5' is not a non-negative number"),
        ("--train-summaries", "train_summary.json", '{"method": "rft", "wall_time_s": 1}',
         r"train_summary\.json: field 'method': 'rft' is not the training of a dpo variant"),
        ("--train-summaries", "train_summary.json", '{"method": "dpo"}',
         r"train_summary\.json: missing field 'wall_time_s'"),
        ("--train-summaries", "train_summary.json",
         '{"method": "dpo", "wall_time_s": 5, "gpus": -2}',
         r"train_summary\.json: field 'gpus': -2 is not a count"),
    ],
)  # fmt: skip
def test_malformed_inputs_name_the_file_line_and_field(tmp_path, flag, name, text, message):
    path = _bad(tmp_path, name, text)
    argv = ["--policy", MODEL, "--variant", "dpo", flag, path, "--out", str(tmp_path / "b.json")]
    with pytest.raises(InputError, match=rf"^{tmp_path}/{message}"):
        budget.main(argv)
    assert not (tmp_path / "b.json").exists()


def test_a_grpo_budget_comes_from_its_summary(tmp_path, inputs) -> None:
    summary = json.loads(Path(inputs["grpo"]).read_text())
    del summary["budget"]["responses"]
    path = _bad(tmp_path, "train_summary.json", json.dumps(summary))
    out = str(tmp_path / "b.json")
    grpo = ["--policy", MODEL, "--variant", "grpo", "--arm", "pass_all", "--out", out]
    with pytest.raises(InputError, match=rf"{path}: missing field 'budget\.responses'"):
        budget.main([*grpo, "--train-summaries", path])
    with pytest.raises(InputError, match=r"--variant grpo: .* no --samples or --executions"):
        budget.main([*grpo, "--samples", inputs["samples1"]])
    with pytest.raises(InputError, match=r"--variant base: .* no inputs"):
        budget.main(["--policy", MODEL, "--variant", "base", "--out", out,
                     "--executions", inputs["executions1"]])  # fmt: skip
    with pytest.raises(InputError, match=r"--pairs-from: a rft variant is trained on no pairs"):
        budget.main(["--policy", MODEL, "--variant", "rft", "--pairs-from", "x", "--out", out])


def test_a_bad_budget_file_names_its_field(budgets, tmp_path) -> None:
    data = json.loads(Path(budgets["rft"]).read_text())
    data["executor_seconds"] = -1.0
    path = tmp_path / "rft.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"{path}: field 'executor_seconds': -1\.0 is not"):
        budget.read_budgets([str(path)])
    shutil.copy(budgets["grpo"], tmp_path / "grpo.json")
    data = json.loads((tmp_path / "grpo.json").read_text())
    (tmp_path / "grpo.json").write_text(json.dumps({**data, "round": 0}))
    with pytest.raises(InputError, match=r"grpo\.json: field 'round': 0 is not a round"):
        budget.read_budgets([str(tmp_path / "grpo.json")])


def test_a_benchmark_of_problems_released_after_a_date_is_named_in_the_note(
    scores, budgets, tmp_path: Path
) -> None:
    out = tmp_path / "tables"
    argv = ["--scores", *scores, "--budgets", *budgets.values(), "--models", MODEL,
            "--benchmarks", BENCHMARK, "--outdir", str(out), "--bootstrap-resamples", "200",
            "--budget-note", "Matched.", "--released-after", f"{BENCHMARK}=2024-04-30"]  # fmt: skip
    assert table3.main(argv) == 0
    note = (out / "table3.md").read_text().splitlines()[-1]
    assert note.endswith(f"Matched. {BENCHMARK}: problems released after 2024-04-30 (not in the "
                         "paper).")  # fmt: skip
    with pytest.raises(InputError, match=r"--released-after: \['other'\] are not among"):
        table3.main([*argv[:-1], "other=2024-04-30"])
    with pytest.raises(InputError, match="--released-after"):
        table3.main([*argv[:-1], f"{BENCHMARK}=2024-02-30"])
