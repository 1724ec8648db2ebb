"""Table 1 and Table 2 from score files."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from workflow_helpers import copy_workflow, snakemake  # noqa: E402

from codedpo.evaluation.score_files import DEFAULT_RUN  # noqa: E402
from codedpo.io import InputError  # noqa: E402
from codedpo.reporting.make_tables import main
from codedpo.reporting.paper_results import load_paper  # noqa: E402
from codedpo.reporting.table_format import best_in_block, latex_escape  # noqa: E402
from codedpo.reporting.tables import build_tables, write_tables  # noqa: E402

MODELS = ["deepseek", "codeqwen"]
BENCHMARKS = ["humaneval", "humaneval_plus", "mbpp"]


def s(policy: str, variant: str, benchmark: str, value: float, pairs_from: str | None = None):
    out = {
        "policy": policy,
        "variant": variant,
        "benchmark": benchmark,
        "pass_at_1": value,
        "passed": 0,
        "total": 164,
    }
    if pairs_from:
        out["pairs_from"] = pairs_from
    return out


def full_scores() -> list[dict]:
    scores = []
    for m_i, model in enumerate(MODELS):
        for b_i, bench in enumerate(BENCHMARKS):
            base = 0.5 + 0.1 * m_i + 0.01 * b_i
            scores += [
                s(model, "base", bench, base),
                s(model, "rft", bench, base + 0.02),
                s(model, "dpo", bench, base + 0.05, pairs_from=model),
            ]
            other = MODELS[1 - m_i]
            scores.append(s(model, "dpo", bench, base + 0.03, pairs_from=other))
    return scores


def write_score_files(directory: Path) -> list[str]:
    """``full_scores()`` as one JSON file each, as the workflow's score_eval writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, score in enumerate(full_scores()):
        path = directory / f"{i}.json"
        path.write_text(json.dumps(score))
        paths.append(str(path))
    return paths


def test_table1_layout_and_values() -> None:
    t1, _ = build_tables(full_scores(), MODELS, BENCHMARKS)
    assert list(t1.columns) == BENCHMARKS
    assert list(t1.index) == [
        ("deepseek", "base"),
        ("deepseek", "+ RFT"),
        ("deepseek", "+ DPO"),
        ("codeqwen", "base"),
        ("codeqwen", "+ RFT"),
        ("codeqwen", "+ DPO"),
    ]
    assert t1.loc[("deepseek", "base"), "humaneval"] == 0.5
    assert t1.loc[("codeqwen", "+ RFT"), "mbpp"] == pytest.approx(0.64)
    assert t1.loc[("codeqwen", "+ DPO"), "humaneval_plus"] == pytest.approx(0.66)
    assert not t1.isna().any().any()


def test_table2_layout_and_values() -> None:
    _, t2 = build_tables(full_scores(), MODELS, BENCHMARKS)
    # The paper's layout: each model's base row, on-policy DPO, then off-policy DPO.
    assert list(t2.index) == [
        ("deepseek", "base"),
        ("deepseek", "DPO on-policy"),
        ("deepseek", "DPO off-policy (pairs from codeqwen)"),
        ("codeqwen", "base"),
        ("codeqwen", "DPO on-policy"),
        ("codeqwen", "DPO off-policy (pairs from deepseek)"),
    ]
    assert t2.loc[("deepseek", "DPO on-policy"), "humaneval"] == pytest.approx(0.55)
    assert t2.loc[("deepseek", "DPO off-policy (pairs from codeqwen)"), "humaneval"] == (
        pytest.approx(0.53)
    )
    assert not t2.isna().any().any()
    # On-policy DPO is the same score in both tables.
    t1, _ = build_tables(full_scores(), MODELS, BENCHMARKS)
    for model in MODELS:
        pd.testing.assert_series_equal(
            t1.loc[(model, "+ DPO")], t2.loc[(model, "DPO on-policy")], check_names=False
        )


def test_missing_cells_are_nan_and_dash(tmp_path: Path) -> None:
    scores = [s("deepseek", "base", "humaneval", 0.4567), s("codeqwen", "rft", "mbpp", 0.7)]
    t1, t2 = build_tables(scores, MODELS, BENCHMARKS)
    assert t1.shape == (6, 3) and t2.shape == (6, 3)
    assert t1.loc[("deepseek", "base"), "humaneval"] == 0.457  # rounded to 3 decimals
    assert t1.isna().sum().sum() == 16 and t2.isna().sum().sum() == 17
    write_tables(t1, t2, tmp_path)
    md = (tmp_path / "table1.md").read_text().splitlines()
    assert md[0].split("|")[1].strip() == "Model"
    assert [c.strip() for c in md[2].split("|")[1:-1]] == ["deepseek", "0.457", "-", "-"]
    assert [c.strip() for c in md[3].split("|")[1:-1]] == ["+ RFT", "-", "-", "-"]
    assert [c.strip() for c in md[6].split("|")[1:-1]] == ["+ RFT", "-", "-", "0.700"]
    csv = pd.read_csv(tmp_path / "table1.csv")
    assert list(csv.columns) == ["model", "method", *BENCHMARKS]
    assert math.isnan(csv.loc[1, "humaneval"]) and csv.loc[0, "humaneval"] == 0.457


def test_variant_with_pairs_source_suffix() -> None:
    # docs/formats.md writes the pairs' source into the variant: "dpo-<model>".
    scores = [
        s("deepseek", "dpo-codeqwen", "mbpp", 0.61),
        s("deepseek", "dpo-deepseek", "mbpp", 0.6),
    ]
    _, t2 = build_tables(scores, MODELS, BENCHMARKS)
    assert t2.loc[("deepseek", "DPO off-policy (pairs from codeqwen)"), "mbpp"] == 0.61
    assert t2.loc[("deepseek", "DPO on-policy"), "mbpp"] == 0.6


def test_scores_outside_the_requested_models_are_ignored() -> None:
    scores = full_scores() + [
        s("llama", "base", "humaneval", 0.1),
        s("deepseek", "base", "ds", 0.2),
    ]
    t1, _ = build_tables(scores, MODELS, BENCHMARKS)
    assert "llama" not in t1.index.get_level_values("model") and "ds" not in t1.columns


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([s("deepseek", "base", "mbpp", 0.5), s("deepseek", "base", "mbpp", 0.6)], "two scores"),
        ([s("deepseek", "ppo", "mbpp", 0.5)], r"'ppo' is not base, rft, dpo or grpo"),
        ([s("deepseek", "dpo-beta01", "mbpp", 0.5)], r"'dpo-beta01' names no model"),
        ([s("deepseek", "base", "mbpp", 1.5)], r"field 'pass_at_1': 1.5"),
        ([{"policy": "deepseek", "variant": "base", "benchmark": "mbpp"}], "'pass_at_1'"),
    ],
)
def test_bad_scores(scores: list[dict], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_tables(scores, MODELS, BENCHMARKS)


def test_cli(tmp_path: Path) -> None:
    paths = write_score_files(tmp_path / "scores")
    out = tmp_path / "tables"
    argv = [
        "--scores",
        *paths,
        "--models",
        *MODELS,
        "--benchmarks",
        *BENCHMARKS,
        "--outdir",
        str(out),
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "table1.csv",
        "table1.md",
        "table1.tex",
        "table2.csv",
        "table2.md",
        "table2.tex",
    ]
    md2 = (out / "table2.md").read_text()
    assert "| deepseek " in md2 and "DPO off-policy (pairs from deepseek)" in md2
    assert "sha256" in md2 and "-" not in md2.split("\n")[2].split("|")[3]
    csv2 = pd.read_csv(out / "table2.csv")
    assert len(csv2) == 6 and not csv2[BENCHMARKS].isna().any().any()


def test_bad_score_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"policy": "deepseek", "variant": "sft", "benchmark": "mbpp", "pass_at_1": 0.1})
    )
    with pytest.raises(InputError, match=r"s\.json: field 'variant'"):
        main(
            [
                "--scores",
                str(path),
                "--models",
                *MODELS,
                "--benchmarks",
                "mbpp",
                "--outdir",
                str(tmp_path / "t"),
            ]
        )


REPO = Path(__file__).resolve().parents[1]
PAPER_RESULTS = REPO / "configs" / "paper_results.yaml"
HUB_IDS = {"deepseek": "deepseek-ai/deepseek-coder-6.7b-instruct",
           "codeqwen": "Qwen/CodeQwen1.5-7B-Chat"}  # fmt: skip


def test_paper_numbers_sit_beside_ours_where_both_exist(tmp_path: Path) -> None:
    paper_file = tmp_path / "paper.yaml"
    paper_file.write_text(
        yaml.safe_dump(
            {
                "models": {
                    HUB_IDS["codeqwen"]: {
                        "base": {"humaneval": 0.829, "mbpp": 0.783},
                        "dpo": {"humaneval": 0.878},
                        "dpo_pairs_from": {HUB_IDS["deepseek"]: {"mbpp": 0.79}},
                    },
                    "some/other-model": {"base": {"humaneval": 0.1}},
                }
            }
        )
    )
    # our "humaneval_plus" is the paper's humaneval_plus, and so on; "mbpp" here is the paper's
    benchmark_ids = {b: b for b in BENCHMARKS}
    paper = load_paper(paper_file, HUB_IDS, benchmark_ids)
    t1, t2 = build_tables(full_scores(), MODELS, BENCHMARKS, paper)
    # humaneval_plus has no paper value for these rows: no paper column for it
    assert list(t1.columns) == ["humaneval", "humaneval (paper)", "humaneval_plus", "mbpp",
                                "mbpp (paper)"]  # fmt: skip
    assert t1.loc[("codeqwen", "base"), "humaneval (paper)"] == 0.829
    assert t1.loc[("codeqwen", "+ DPO"), "humaneval (paper)"] == 0.878
    assert math.isnan(t1.loc[("codeqwen", "+ RFT"), "humaneval (paper)"])
    assert t1[[c for c in t1.columns if "paper" in c]].loc["deepseek"].isna().all().all()
    # ours are untouched
    assert t1.loc[("codeqwen", "base"), "humaneval"] == 0.6
    # Table 2: the off-policy row takes dpo_pairs_from's value
    assert list(t2.columns) == ["humaneval", "humaneval (paper)", "humaneval_plus", "mbpp",
                                "mbpp (paper)"]  # fmt: skip
    row = ("codeqwen", "DPO off-policy (pairs from deepseek)")
    assert t2.loc[row, "mbpp (paper)"] == 0.79
    assert t2.loc[("codeqwen", "DPO on-policy"), "humaneval (paper)"] == 0.878
    # without hub ids (the demo's models) there is nothing to put beside ours
    t1, _ = build_tables(full_scores(), MODELS, BENCHMARKS, load_paper(paper_file, {}, {}))
    assert list(t1.columns) == BENCHMARKS


def test_cli_prints_the_stored_paper_numbers(tmp_path: Path) -> None:
    paths = write_score_files(tmp_path / "scores")
    out = tmp_path / "tables"
    argv = ["--scores", *paths, "--models", *MODELS, "--benchmarks", *BENCHMARKS,
            "--paper", str(PAPER_RESULTS),
            "--model-ids", *(f"{m}={h}" for m, h in HUB_IDS.items()),
            "--benchmark-ids", *(f"{b}={b}" for b in BENCHMARKS), "--outdir", str(out)]  # fmt: skip
    assert main(argv) == 0
    md1 = (out / "table1.md").read_text()
    header = md1.splitlines()[0]
    assert "humaneval (paper)" in header and "mbpp (paper)" in header
    assert "humaneval_plus (paper)" in header and "mbpp_plus" not in header  # not asked for
    codeqwen_dpo = next(line for line in md1.splitlines() if line.startswith("| + DPO")
                        and "0.878" in line)  # fmt: skip
    assert "0.804" in codeqwen_dpo and "0.829" in codeqwen_dpo  # mbpp, humaneval_plus
    assert "the paper's reported numbers" in md1
    csv1 = pd.read_csv(out / "table1.csv")
    assert "humaneval (paper)" in csv1.columns
    assert r"humaneval (paper)" in (out / "table1.tex").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models: {a/b: {base: {humaneval: 1.5}}}", r"field 'models\.a/b\.base\.humaneval'"),
        ("models: {a/b: {base: {apps: 0.5}}}", r"field 'models\.a/b\.base'"),
        ("models: {a/b: {sft: {mbpp: 0.5}}}", r"field 'models\.a/b'"),
        ("reference: x", r"field '\(file\)'.*'models' is a required property"),
        ("models: [", r"cannot read"),
    ],
)
def test_bad_paper_file_names_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "paper.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match=rf"paper\.yaml: .*{message}|paper\.yaml: {message}"):
        load_paper(path, HUB_IDS, {"humaneval": "humaneval"})


SHARED_PAPER = REPO.parent / "shared" / "paper" / "README.md"
PAPER_HUB = {
    "CodeQwen1.5 7B": "Qwen/CodeQwen1.5-7B-Chat",
    "DeepSeek-Coder 6.7B": "deepseek-ai/deepseek-coder-6.7b-instruct",
    "CodeLlama-Instruct 7B": "codellama/CodeLlama-7b-Instruct-hf",
}
PAPER_COLUMNS = ["mbpp", "mbpp_plus", "humaneval", "humaneval_plus"]  # the paper's order


def paper_tables() -> dict[tuple[str, str, str | None], dict[str, float]]:
    """Tables 1 and 2 as ../shared/paper/README.md copies them from the paper:
    ``(hub id, kind, pairs_from hub id) -> benchmark -> pass@1``."""
    text = SHARED_PAPER.read_text()
    cells: dict[tuple[str, str, str | None], dict[str, float]] = {}
    for table in ("## Table 1", "## Table 2"):
        section = text.split(table, 1)[1].split("\n## ", 1)[0]
        model = None
        for line in section.splitlines():
            parts = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(parts) != 6 or not parts[2].startswith("0."):
                continue
            if parts[0]:
                model = PAPER_HUB[next(k for k in PAPER_HUB if parts[0].startswith(k))]
            label = parts[1]
            if label in ("base", "on-policy DPO", "+ RFT", "+ DPO"):
                kind = {"base": "base", "+ RFT": "rft"}.get(label, "dpo")
                key = (model, kind, model if kind == "dpo" else None)
            else:
                other = next(k for k in PAPER_HUB if k in label)
                key = (model, "dpo", PAPER_HUB[other])
            values = dict(zip(PAPER_COLUMNS, map(float, parts[2:]), strict=True))
            assert cells.setdefault(key, values) == values, key  # Table 2 repeats Table 1
    return cells


@pytest.mark.real_data
def test_stored_paper_numbers_are_all_of_tables_1_and_2() -> None:
    """configs/paper_results.yaml holds every cell of the paper's Tables 1 and 2, as copied in
    ../shared/paper/README.md (3 models x 3 rows + 2 off-policy rows, 4 benchmarks each)."""
    expected = paper_tables()
    assert len(expected) == 11
    policies = {hub: hub for hub in PAPER_HUB.values()}
    cells = load_paper(PAPER_RESULTS, policies, {b: b for b in PAPER_COLUMNS})
    got: dict[tuple[str, str, str | None], dict[str, float]] = {}
    for (policy, kind, pairs_from, run, bench), value in cells.items():
        assert run == DEFAULT_RUN  # the paper ran one round of its own DPO
        got.setdefault((policy, kind, pairs_from), {})[bench] = value
    assert got == expected


@pytest.mark.workflow
@pytest.mark.real_data
def test_paper_config_tables_show_every_paper_cell(tmp_path: Path) -> None:
    """The make_tables command the paper config's dry run plans, run before any score exists:
    Table 1 and Table 2 have every row of the paper and every paper cell in place."""
    workdir = copy_workflow(tmp_path / "paper")
    shell = snakemake(workdir, "-n", "-p", "--configfile", "configs/paper.yaml").stdout
    (line,) = [x for x in shell.splitlines() if "codedpo tables --scores" in x]
    argv = shlex.split(line.split("codedpo tables", 1)[1].split(">", 1)[0])
    # No score file exists yet: render the tables from the paper's numbers alone.
    start, end = argv.index("--scores") + 1, argv.index("--models")
    argv[start:end] = []
    argv[argv.index("--outdir") + 1] = str(tmp_path / "tables")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        assert main(argv) == 0
    ours = {"codeqwen": PAPER_HUB["CodeQwen1.5 7B"],
            "deepseek": PAPER_HUB["DeepSeek-Coder 6.7B"],
            "codellama": PAPER_HUB["CodeLlama-Instruct 7B"]}  # fmt: skip
    name_of = {hub: name for name, hub in ours.items()}
    t1 = pd.read_csv(tmp_path / "tables/table1.csv").set_index(["model", "method"])
    t2 = pd.read_csv(tmp_path / "tables/table2.csv").set_index(["model", "method"])
    assert list(t2.index.get_level_values(0).unique()) == ["codeqwen", "deepseek"]  # no CodeLlama
    for (hub, kind, pairs_from), values in paper_tables().items():
        model = name_of[hub]
        rows = []
        if kind != "dpo" or pairs_from == hub:
            rows.append((t1, {"base": "base", "rft": "+ RFT", "dpo": "+ DPO"}[kind]))
        if kind == "base" and model != "codellama":
            rows.append((t2, "base"))
        if kind == "dpo" and model != "codellama":
            label = "DPO on-policy" if pairs_from == hub else (
                f"DPO off-policy (pairs from {name_of[pairs_from]})")  # fmt: skip
            rows.append((t2, label))
        assert rows
        for table, method in rows:
            for bench, value in values.items():
                assert table.loc[(model, method), f"{bench} (paper)"] == value, (model, method)
                assert math.isnan(table.loc[(model, method), bench])  # nothing of ours yet
    assert len(t1) == 9 and len(t2) == 6
    # Beyond the paper: a column of problems released after the models, with no paper column
    # and its date in the note.
    assert "leetcode_new" in t1.columns and "leetcode_new (paper)" not in t1.columns
    note = "leetcode_new: problems released after 2024-04-30 (not in the paper)."
    assert note in (tmp_path / "tables/table1.md").read_text()


def test_differences_to_base_with_intervals(tmp_path: Path) -> None:
    """Score files with per-problem verdicts get a difference to the base model, its paired
    bootstrap interval and McNemar's p-value on every non-base row."""
    tasks = [f"t{i}" for i in range(100)]

    def scored(policy, variant, passed, pairs_from=None):
        out = s(policy, variant, "mbpp", len(passed) / len(tasks), pairs_from)
        out["verdicts"] = {t: {"passed": t in passed, "status": "passed" if t in passed else
                               "failed"} for t in tasks}  # fmt: skip
        out["passed"], out["total"] = len(passed), len(tasks)
        return out

    base = set(tasks[:40])
    scores = [
        scored("deepseek", "base", base),
        scored("deepseek", "rft", base | set(tasks[40:42])),  # +0.02, noise
        scored("deepseek", "dpo", base | set(tasks[40:70]), "deepseek"),  # +0.30
        scored("deepseek", "dpo", set(tasks[5:40]), "codeqwen"),  # -0.05, all losses
    ]
    t1, t2 = build_tables(scores, ["deepseek"], ["mbpp"], off_policy=[("deepseek", "codeqwen")])
    assert list(t1.columns) == ["mbpp", "mbpp diff", "mbpp diff low", "mbpp diff high", "mbpp p"]
    assert math.isnan(t1.loc[("deepseek", "base"), "mbpp diff"])
    rft, dpo = t1.loc[("deepseek", "+ RFT")], t1.loc[("deepseek", "+ DPO")]
    assert rft["mbpp diff"] == pytest.approx(0.02) and rft["mbpp diff low"] <= 0
    assert rft["mbpp p"] == pytest.approx(0.5)  # 2 gains, 0 losses
    assert dpo["mbpp diff"] == pytest.approx(0.30) and dpo["mbpp diff low"] > 0.2
    assert dpo["mbpp p"] < 1e-8
    off = t2.loc[("deepseek", "DPO off-policy (pairs from codeqwen)")]
    assert off["mbpp diff"] == pytest.approx(-0.05) and off["mbpp diff high"] < 0
    write_tables(t1, t2, tmp_path)
    md = (tmp_path / "table1.md").read_text().splitlines()
    assert [c.strip() for c in md[0].split("|")[2:5]] == ["mbpp", "mbpp diff [95% CI]", "mbpp p"]
    rows = {line.split("|")[1].strip(): line.split("|")[2:5] for line in md[2:]}
    assert rows["deepseek"][1].strip() == "-"
    assert rows["+ RFT"][1].strip().startswith("+0.020 [") and "*" not in rows["+ RFT"][1]
    dpo_cell = rows["+ DPO"][1].strip()
    assert dpo_cell.startswith("+0.300 [+0.") and dpo_cell.endswith("]*")
    assert rows["+ DPO"][2].strip() == "<0.001"
    tex = (tmp_path / "table2.tex").read_text()
    assert r"-0.050 [-0." in tex and "$^{*}$" in tex
    csv = pd.read_csv(tmp_path / "table1.csv")
    assert csv.loc[2, "mbpp p"] < 1e-8  # full precision in the CSV, not rounded to 0.000


def test_differences_need_the_same_problems() -> None:
    a = s("deepseek", "base", "mbpp", 0.5)
    a["verdicts"], a["passed"], a["total"] = {"t1": {"passed": True}, "t2": {"passed": False}}, 1, 2
    b = s("deepseek", "rft", "mbpp", 0.5)
    b["verdicts"], b["passed"], b["total"] = {"t1": {"passed": True}, "t3": {"passed": False}}, 1, 2
    with pytest.raises(InputError, match=r"deepseek \+ RFT on mbpp: .*different problems"):
        build_tables([a, b], ["deepseek"], ["mbpp"])
    b["verdicts"] = {"t1": {"passed": True}, "t2": {"passed": True}}  # says 2 passed, not 1
    with pytest.raises(InputError, match="'verdicts' disagrees with 'passed'"):
        build_tables([a, b], ["deepseek"], ["mbpp"])


def test_off_policy_rows_follow_the_swap() -> None:
    models = ["codeqwen", "deepseek", "codellama"]
    _, t2 = build_tables([], models, ["mbpp"], off_policy=[("codeqwen", "deepseek"),
                                                          ("deepseek", "codeqwen")])  # fmt: skip
    assert list(t2.index) == [
        ("codeqwen", "base"), ("codeqwen", "DPO on-policy"),
        ("codeqwen", "DPO off-policy (pairs from deepseek)"),
        ("deepseek", "base"), ("deepseek", "DPO on-policy"),
        ("deepseek", "DPO off-policy (pairs from codeqwen)"),
    ]  # fmt: skip
    with pytest.raises(InputError, match="'llama' is not one of the models"):
        build_tables([], models, ["mbpp"], off_policy=[("llama", "codeqwen")])
    with pytest.raises(InputError, match="on its own pairs"):
        build_tables([], models, ["mbpp"], off_policy=[("codeqwen", "codeqwen")])


def test_best_in_block_is_per_model_and_column() -> None:
    t1, t2 = build_tables(full_scores(), MODELS, BENCHMARKS)
    best = best_in_block(t1)
    # Within each model, + DPO (base + 0.05) beats + RFT (+ 0.02) and base on every benchmark.
    for model in MODELS:
        assert best.loc[(model, "+ DPO")].all()
        assert not best.loc[(model, "base")].any() and not best.loc[(model, "+ RFT")].any()
    # Table 2: on-policy (+ 0.05) beats off-policy (+ 0.03).
    assert best_in_block(t2).loc[(MODELS[0], "DPO on-policy")].all()


def test_best_in_block_ties_and_lone_values() -> None:
    scores = [
        s("deepseek", "base", "mbpp", 0.5),
        s("deepseek", "rft", "mbpp", 0.6),
        s("deepseek", "dpo", "mbpp", 0.6),
        s("codeqwen", "base", "mbpp", 0.4),  # alone in its block: nothing to compare
    ]
    t1, _ = build_tables(scores, MODELS, ["mbpp"])
    best = best_in_block(t1)["mbpp"]
    assert best[("deepseek", "+ RFT")] and best[("deepseek", "+ DPO")]
    assert not best[("deepseek", "base")] and not best[("codeqwen", "base")]


def test_latex_table(tmp_path: Path) -> None:
    scores = [
        s("deepseek", "base", "humaneval_plus", 0.5),
        s("deepseek", "rft", "humaneval_plus", 0.55),
        s("deepseek", "dpo", "humaneval_plus", 0.6),
        s("codeqwen", "base", "humaneval_plus", 0.7),
        s("codeqwen", "dpo", "humaneval_plus", 0.65),
    ]
    t1, t2 = build_tables(scores, MODELS, ["humaneval", "humaneval_plus"])
    write_tables(t1, t2, tmp_path, note="Greedy pass@1; 50% of runs")
    tex = (tmp_path / "table1.tex").read_text().splitlines()
    assert tex[0] == r"% Greedy pass@1; 50% of runs"
    body = tex[tex.index(r"\begin{tabular}{lrr}") :]
    assert body[1:4] == [r"\toprule", r"Model & humaneval & humaneval\_plus \\", r"\midrule"]
    assert body[4:7] == [
        r"deepseek & -- & 0.500 \\",
        r"+ RFT & -- & 0.550 \\",
        r"+ DPO & -- & \textbf{0.600} \\",
    ]
    assert body[7] == r"\midrule"  # between model blocks
    assert body[8:11] == [
        r"codeqwen & -- & \textbf{0.700} \\",
        r"+ RFT & -- & -- \\",
        r"+ DPO & -- & 0.650 \\",
    ]
    assert body[-2:] == [r"\bottomrule", r"\end{tabular}"]
    tex2 = (tmp_path / "table2.tex").read_text()
    assert r"\begin{tabular}{llrr}" in tex2
    assert r" & DPO off-policy (pairs from deepseek) & -- & -- \\" in tex2


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% #1 {x} $y ~^\\") == (
        r"a\_b \& 50\% \#1 \{x\} \$y \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )


@pytest.mark.parametrize("flag", ["--model-ids", "--benchmark-ids"])
def test_malformed_id_mapping_is_an_error_naming_the_flag(tmp_path: Path, flag: str) -> None:
    argv = ["--scores", *write_score_files(tmp_path / "scores"), "--models", *MODELS,
            "--benchmarks", *BENCHMARKS, "--paper", str(PAPER_RESULTS), flag, "codeqwen",
            "--outdir", str(tmp_path / "t")]  # fmt: skip
    with pytest.raises(InputError, match=f"{flag}: expected KEY=VALUE, got 'codeqwen'"):
        main(argv)
