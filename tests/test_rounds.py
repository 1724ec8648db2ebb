"""Tables and the round plot of an iterative experiment: 2 rounds x 2 arms of one policy, scored by
``codedpo score`` from records the sandbox wrote (tests/scored_runs.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).parent))
from scored_runs import BENCHMARK, CANDIDATES, TASKS, execute_candidates, score_run  # noqa: E402

from codedpo.io import InputError  # noqa: E402
from codedpo.reporting.make_tables import main as tables_main  # noqa: E402
from codedpo.reporting.plots import main as plot_main  # noqa: E402
from codedpo.reporting.plots import rounds_frame  # noqa: E402
from codedpo.reporting.rounds_table import build_rounds_table  # noqa: E402
from codedpo.reporting.tables import build_tables  # noqa: E402

# Problems each run's greedy answer solves: the paper's arm gains in round 2, max_min loses.
# (variant, arm, round, recipe): None is the flag left out (the default).
SOLVED = {
    ("base", None, None, None): set(range(3)),
    ("rft", None, None, None): set(range(4)),
    ("dpo", "paper", 1, None): set(range(5)),
    ("dpo", "paper", 2, None): set(range(10)),
    ("dpo", None, None, "dpo-ipo"): set(range(7)),
    ("dpo", "max_min", 1, None): set(range(6)),
    ("dpo", "max_min", 2, None): set(range(1, 5)),
}
# pass@k from 5 samples per problem, for the paper's arm: correct answers per problem.
SAMPLED = {1: {0: 5, 1: 3, 2: 1}, 2: {i: 4 for i in range(8)}}
ARMS = {"paper": "dpo", "max_min": "dpo"}


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> list[str]:
    workdir = tmp_path_factory.mktemp("rounds")
    problems, records = execute_candidates(workdir / "executed")
    paths = []
    for (variant, arm, round_, recipe), solved in SOLVED.items():
        extra = () if arm is None else ("--arm", arm, "--round", str(round_))
        extra += () if recipe is None else ("--recipe", recipe)
        sampled = SAMPLED.get(round_) if arm == "paper" else None
        out = workdir / f"{variant}-{arm}-{round_}-{recipe}"
        paths.append(str(score_run(out, problems, records, policy="demo-a", variant=variant,
                                   solved=solved, sampled=sampled, extra=extra)))  # fmt: skip
    return paths


def load(paths: list[str]) -> list[dict]:
    return [{**json.loads(Path(p).read_text()), "_path": p} for p in paths]


def exact_pass_at_k(correct: dict[int, int], k: int) -> float:
    n = CANDIDATES
    values = [1 - math.comb(n - correct.get(i, 0), k) / math.comb(n, k) for i in range(len(TASKS))]
    return sum(values) / len(values)


def test_table1_has_one_dpo_row_per_arm_and_round(scores) -> None:
    t1, _ = build_tables(load(scores), ["demo-a"], [BENCHMARK])
    assert [m for _, m in t1.index] == ["base", "+ RFT", "+ DPO", "+ DPO r2", "+ DPO ipo",
                                        "+ DPO max_min", "+ DPO max_min r2"]  # fmt: skip
    n = len(TASKS)
    assert t1[BENCHMARK].tolist() == pytest.approx(
        [3 / n, 4 / n, 5 / n, 10 / n, 7 / n, 6 / n, 4 / n], abs=5e-4
    )
    # Each row's difference is to the base model; the second round's of max_min too.
    assert t1.loc[("demo-a", "+ DPO r2"), f"{BENCHMARK} diff"] == pytest.approx(7 / n, abs=5e-4)
    assert t1.loc[("demo-a", "+ DPO max_min r2"), f"{BENCHMARK} diff"] == pytest.approx(
        1 / n, abs=5e-4
    )
    # pass@k where scored (the paper's arm), empty elsewhere.
    for k in (1, 5):
        column = f"{BENCHMARK} pass@{k} (sampled)"
        assert t1.loc[("demo-a", "+ DPO"), column] == pytest.approx(
            exact_pass_at_k(SAMPLED[1], k), abs=5e-4
        )
        assert t1.loc[("demo-a", "+ DPO r2"), column] == pytest.approx(
            exact_pass_at_k(SAMPLED[2], k), abs=5e-4
        )
        assert t1[column].isna().tolist() == [True, True, False, False, True, True, True]
    # Table 2 stays the paper's: base and on-policy DPO of the first round.
    _, t2 = build_tables(load(scores), ["demo-a"], [BENCHMARK], off_policy=[("demo-a", "b")])
    assert [m for _, m in t2.index] == ["base", "DPO on-policy", "DPO off-policy (pairs from b)"]
    assert t2.loc[("demo-a", "DPO on-policy"), BENCHMARK] == pytest.approx(5 / n, abs=5e-4)


def test_rounds_table_compares_each_round_with_round_one(scores) -> None:
    table = build_rounds_table(load(scores), ["demo-a"], [BENCHMARK])
    assert list(table.index) == [
        ("demo-a", "base", "", 0),
        ("demo-a", "paper", "dpo", 1),
        ("demo-a", "paper", "dpo", 2),
        ("demo-a", "paper", "dpo-ipo", 1),
        ("demo-a", "max_min", "dpo", 1),
        ("demo-a", "max_min", "dpo", 2),
    ]
    n = len(TASKS)
    diff = f"{BENCHMARK} diff"
    assert table[diff].isna().tolist() == [True, True, False, True, True, False]
    paper2 = table.loc[("demo-a", "paper", "dpo", 2)]
    assert paper2[diff] == pytest.approx(5 / n, abs=5e-4)  # 5 gains, no loss
    assert paper2[f"{diff} low"] > 0 and paper2[f"{diff} low"] <= paper2[diff]
    assert paper2[f"{BENCHMARK} p"] == pytest.approx(binomtest(5, 5).pvalue)
    mm2 = table.loc[("demo-a", "max_min", "dpo", 2)]
    assert mm2[diff] == pytest.approx(-2 / n, abs=5e-4)  # lost problems 0 and 5
    assert mm2[f"{diff} low"] < 0 and mm2[f"{diff} high"] <= 0
    assert mm2[f"{BENCHMARK} p"] == pytest.approx(binomtest(0, 2).pvalue)
    assert table.loc[("demo-a", "base", "", 0), BENCHMARK] == pytest.approx(3 / n, abs=5e-4)
    assert f"{BENCHMARK} pass@5 (sampled)" in table.columns


def test_cli_writes_the_round_table_and_the_plot(scores, tmp_path: Path) -> None:
    out = tmp_path / "tables"
    argv = ["--scores", *scores, "--models", "demo-a", "--benchmarks", BENCHMARK,
            "--outdir", str(out), "--rounds-table"]  # fmt: skip
    assert tables_main(argv) == 0
    md = (out / "rounds.md").read_text().splitlines()
    assert [c.strip() for c in md[0].split("|")[1:-1]] == [
        "Model", "Arm", "Recipe", "Round", BENCHMARK, f"{BENCHMARK} pass@1 (sampled)",
        f"{BENCHMARK} pass@5 (sampled)",
        f"{BENCHMARK} vs r1 [95% CI]", f"{BENCHMARK} p",
    ]  # fmt: skip
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in md[2:8]]
    assert [c[:4] for c in cells] == [["demo-a", "base", "", "0"], ["", "paper", "dpo", "1"],
                                      ["", "paper", "dpo", "2"], ["", "paper", "dpo-ipo", "1"],
                                      ["", "max_min", "dpo", "1"],
                                      ["", "max_min", "dpo", "2"]]  # fmt: skip
    assert cells[2][7].startswith("+0.417 [+0.") and cells[2][7].endswith("*")
    assert "round 1 of the same arm" in md[-1] and "Chen et al. (2021)" in md[-1]
    assert "n = 5 temperature samples" in md[-1]
    csv = pd.read_csv(out / "rounds.csv")
    assert list(csv.columns[:4]) == ["model", "arm", "recipe", "round"]
    assert csv["round"].tolist() == [0, 1, 2, 1, 1, 2]
    table1 = (out / "table1.md").read_text()
    assert "| + DPO max_min r2 " in table1 and f"{BENCHMARK} pass@5 (sampled)" in table1

    png = tmp_path / "rounds.png"
    assert plot_main(["rounds", "--scores", *scores, "--models", "demo-a",
                      "--benchmarks", BENCHMARK, "--out", str(png)]) == 0  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same scores draw the same figure, byte for byte.
    again = tmp_path / "again.png"
    plot_main(["rounds", "--scores", *scores, "--models", "demo-a", "--benchmarks", BENCHMARK,
               "--out", str(again)])  # fmt: skip
    assert again.read_bytes() == png.read_bytes()


def test_rounds_plot_lines_start_at_the_base_model(scores) -> None:
    df = rounds_frame(load(scores), ["demo-a"], [BENCHMARK])
    greedy = df[df["metric"] == "greedy pass@1"]
    n = len(TASKS)
    for line, values in (("paper", [3, 5, 10]), ("max_min", [3, 6, 4]), ("paper ipo", [3, 7])):
        points = greedy[greedy["line"] == line].sort_values("round")
        assert points["round"].tolist() == list(range(len(values)))
        assert points["value"].tolist() == pytest.approx([v / n for v in values])
    sampled = df[(df["metric"] == "pass@5 (sampled)")]
    assert sampled["line"].unique().tolist() == ["paper"]
    assert sampled["round"].tolist() == [1, 2]  # the base model was not sampled


def test_default_run_keeps_the_tables_byte_identical(scores, tmp_path: Path) -> None:
    """Scores of the paper's run with the new fields and the same scores without them (as written
    before runs existed) give the same bytes in all six files."""
    paper_run = []
    for path in scores:
        s = json.loads(Path(path).read_text())
        if (s["round"], s["arm"], s["recipe"]) == (1, "paper", "dpo"):
            s.pop("pass_at_k", None)
            s.pop("pass_at_k_samples", None)
            paper_run.append(s)
    outputs = []
    for name, strip in (("new", False), ("old", True)):
        paths = []
        for i, s in enumerate(paper_run):
            if strip:
                s = {k: v for k, v in s.items() if k not in ("round", "arm", "recipe")}
            path = tmp_path / name / f"{i}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(s))
            paths.append(str(path))
        out = tmp_path / f"tables-{name}"
        tables_main(["--scores", *paths, "--models", "demo-a", "--benchmarks", BENCHMARK,
                     "--outdir", str(out)])  # fmt: skip
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 6
    assert b"+ DPO r" not in outputs[0]["table1.md"] and b"pass@5" not in outputs[0]["table1.md"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("round", 0, r"field 'round': 0 is not a round"),
        ("round", "2", r"field 'round': '2' is not a round"),
        ("arm", "", r"field 'arm': '' is not a name"),
        ("pass_at_k", {"5": 1.5}, r"field 'pass_at_k\.5': 1\.5 is not in \[0, 1\]"),
        ("pass_at_k", {"x": 0.5}, r"field 'pass_at_k': key 'x' is not a positive integer"),
    ],
)
def test_bad_run_fields_name_the_file_and_field(scores, field, value, message) -> None:
    bad = load(scores)
    bad[2][field] = value
    with pytest.raises(InputError, match=rf"{bad[2]['_path']}: {message}"):
        build_tables(bad, ["demo-a"], [BENCHMARK])


def test_two_scores_of_one_run_are_an_error(scores) -> None:
    twice = load(scores) + load(scores[-1:])
    with pytest.raises(InputError, match=r"two scores for demo-a dpo max_min r2 \(pairs from "
                       r"demo-a\) on toy"):  # fmt: skip
        build_tables(twice, ["demo-a"], [BENCHMARK])
