"""The implicit-reward analysis: verdict joins, TRL-exact tokenisation, batched log-probs, pairs
and statistics, and the command end to end on two tiny models."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import build_tiny_model, tiny_model_dir  # noqa: E402

from codedpo.io import InputError  # noqa: E402
from codedpo.records import RULE_REWARD, STATUSES  # noqa: E402
from codedpo.reporting.implicit_reward import (  # noqa: E402
    load_responses,
    load_training_pairs,
    main,
    reward_pairs,
    score_responses,
    sequence_logprobs,
    spearman,
    summarize,
    tokenize_pair,
)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# Problem p1: a pass, a wrong answer (2/4 tests), a crash (1/4), a syntax error, a duplicate of
# the pass and a sandbox error. Problem p2: a pass and a wrong answer (0/3).
VERDICTS = {
    "p1/0": ("passed", 4, 4, "def f(x):\n    return x + 1\n"),
    "p1/1": ("failed", 2, 4, "def f(x):\n    return x\n"),
    "p1/2": ("runtime_error", 1, 4, "def f(x):\n    return x / 0\n"),
    "p1/3": ("syntax_error", 0, 4, "def f(x) return x\n"),
    "p1/4": ("passed", 4, 4, "def f(x):\n    return x + 1\n"),
    "p1/5": ("sandbox_error", 0, 4, "def f(x):\n    return 1 + x\n"),
    "p2/0": ("passed", 3, 3, "def g(s):\n    return s[::-1]\n"),
    "p2/1": ("failed", 0, 3, "def g(s):\n    return s\n"),
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    problems = [
        {"task_id": "p1", "prompt": "Write f(x) returning x + 1.", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [1], "output": 2}]}},
        {"task_id": "p2", "prompt": "Write g(s) reversing s.", "entry_point": "g",
         "tests": {"kind": "call", "cases": [{"input": ["ab"], "output": "ba"}]}},
    ]
    samples, executions = [], []
    for sample_id, (status, passed, total, code) in VERDICTS.items():
        task_id = sample_id.split("/")[0]
        raw = f"```python\n{code}```"
        samples.append({"task_id": task_id, "sample_id": sample_id, "raw": raw, "solution": code})
        executions.append(
            {"task_id": task_id, "sample_id": sample_id, "status": status, "passed": passed,
             "total": total}
        )  # fmt: skip
    return {
        "problems": write_jsonl(tmp_path / "problems.jsonl", problems),
        "samples": write_jsonl(tmp_path / "samples.jsonl", samples),
        "executions": write_jsonl(tmp_path / "executions.jsonl", executions),
        "pairs": write_jsonl(
            tmp_path / "pairs.jsonl",
            [{"task_id": "p1", "chosen_id": "p1/4", "rejected_id": "p1/1"}],
        ),
    }


def test_rule_reward_covers_every_model_status() -> None:
    # Le et al. (2022): +1 pass, -0.3 failed test, -0.6 runtime error, -1 compile error.
    assert set(RULE_REWARD) == set(STATUSES) - {"sandbox_error", "problem_error"}
    assert RULE_REWARD["passed"] == 1.0 and RULE_REWARD["failed"] == -0.3
    assert RULE_REWARD["syntax_error"] == -1.0
    for status in ("runtime_error", "timeout", "memory_exceeded", "output_exceeded"):
        assert RULE_REWARD[status] == -0.6


def test_load_responses_joins_verdicts_and_drops_sandbox_errors(files) -> None:
    df = load_responses(files["problems"], [files["samples"]], [files["executions"]])
    assert list(df["sample_id"]) == [s for s in VERDICTS if s != "p1/5"]
    row = df.set_index("sample_id").loc["p1/2"]
    assert row["status"] == "runtime_error" and row["rule_reward"] == -0.6
    assert row["frac_passed"] == 0.25 and row["prompt"] == "Write f(x) returning x + 1."


def test_load_responses_errors(files, tmp_path) -> None:
    executions = [json.loads(line) for line in files["executions"].read_text().splitlines()]
    write_jsonl(tmp_path / "short.jsonl", executions[:-1])
    with pytest.raises(InputError, match="no execution record for 'p2/1'"):
        load_responses(files["problems"], [files["samples"]], [tmp_path / "short.jsonl"])
    executions[0]["status"] = "exploded"
    write_jsonl(tmp_path / "bad.jsonl", executions)
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'status': 'exploded' is not one of"):
        load_responses(files["problems"], [files["samples"]], [tmp_path / "bad.jsonl"])


def test_tokenize_pair_matches_training(tmp_path_factory) -> None:
    """The implicit reward scores the sequences DPO trained on
    (codedpo.training.train.tokenize_records)."""
    from transformers import AutoTokenizer

    from codedpo.training.train import tokenize_records

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(tmp_path_factory))
    prompt = [{"role": "user", "content": "Write f."}]
    answer = [{"role": "assistant", "content": "```python\ndef f(x):\n    return x\n```"}]
    (row,) = tokenize_records(tokenizer, [{"prompt": prompt, "chosen": answer,
                                           "rejected": answer}], "dpo")  # fmt: skip
    full_ids, start = row["prompt_ids"] + row["chosen_ids"], len(row["prompt_ids"])

    ids, ours = tokenize_pair(tokenizer, prompt[0]["content"], answer[0]["content"])
    assert ids == full_ids and ours == start and 0 < start < len(ids)
    cut, cut_start = tokenize_pair(
        tokenizer, "Write f.", answer[0]["content"], max_length=start + 2
    )
    assert cut == full_ids[: start + 2] and cut_start == start


def test_sequence_logprobs_batched_equals_one_by_one(tmp_path_factory) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(tmp_path_factory)).eval()
    sequences = [([5, 6, 7, 8, 9, 10], 3), ([11, 12, 13], 1), ([20, 21, 22, 23, 24, 25, 26, 27], 5)]
    sequences.append(([30, 31], 2))  # no completion tokens left (cut by max_length)
    batched = sequence_logprobs(model, sequences, batch_size=3, pad_id=0)
    for (ids, start), value in zip(sequences, batched, strict=True):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        logps = torch.log_softmax(logits, -1)
        expected = sum(float(logps[t - 1, ids[t]]) for t in range(start, len(ids)))
        assert value == pytest.approx(expected, abs=1e-4)
    assert batched[-1] == 0.0 and all(v < 0 for v in batched[:-1])


def test_score_responses_same_model_is_zero_and_beta_scales(files, tmp_path_factory) -> None:
    base = tiny_model_dir(tmp_path_factory)
    other = build_tiny_model(tmp_path_factory.mktemp("other") / "m", seed=7)
    df = load_responses(files["problems"], [files["samples"]], [files["executions"]])
    same = score_responses(df, str(base), str(base), beta=0.1)
    assert (same["implicit_reward"].abs() < 1e-6).all()
    assert (same["completion_tokens"] > 0).all()
    moved = score_responses(df, str(other), str(base), beta=0.1)
    doubled = score_responses(df, str(other), str(base), beta=0.2, batch_size=2)
    assert moved["implicit_reward"].abs().max() > 1e-3
    pd.testing.assert_series_equal(
        doubled["implicit_reward"], 2 * moved["implicit_reward"], check_names=False, atol=1e-5
    )
    # Identical texts (p1/0 and p1/4) get identical rewards.
    by_id = moved.set_index("sample_id")["implicit_reward"]
    assert by_id["p1/0"] == by_id["p1/4"]


def scored(files, rewards: dict[str, float]) -> pd.DataFrame:
    df = load_responses(files["problems"], [files["samples"]], [files["executions"]])
    df["implicit_reward"] = df["sample_id"].map(rewards)
    return df


def test_pairs_orientation_kinds_and_training_flag(files) -> None:
    rewards = {"p1/0": 1.0, "p1/4": 1.0, "p1/1": 0.5, "p1/2": 0.7, "p1/3": -1.0}
    rewards |= {"p2/0": -0.1, "p2/1": 0.2}
    df = scored(files, rewards)
    pairs = reward_pairs(df, load_training_pairs(files["pairs"]))
    # p1: 4 distinct responses -> 6 pairs (the duplicate pass adds none); p2: 1 pair.
    assert len(pairs) == 7
    assert (pairs["rule_diff"] > 0).all()
    crash = pairs[(pairs["a_status"] == "failed") & (pairs["b_status"] == "runtime_error")].iloc[0]
    assert crash["kind"] == "fail-fail (different errors)"
    assert crash["rule_diff"] == pytest.approx(0.3) and crash["frac_diff"] == pytest.approx(0.25)
    assert crash["implicit_diff"] == pytest.approx(-0.2)
    # The trained pair p1/4 > p1/1 is the same texts as p1/0 > p1/1.
    trained = pairs[pairs["in_training"]]
    assert len(trained) == 1 and set(trained.iloc[0][["a_status", "b_status"]]) == {
        "passed",
        "failed",
    }
    assert set(pairs["kind"]) == {"pass-fail", "fail-fail (different errors)"}


def test_pairs_skip_responses_the_tests_do_not_order(files) -> None:
    df = scored(files, dict.fromkeys(VERDICTS, 0.0))
    df.loc[df["sample_id"] == "p2/1", ["status", "rule_reward", "frac_passed"]] = [
        "passed",
        1.0,
        1.0,
    ]
    pairs = reward_pairs(df)
    assert "p2" not in set(pairs["task_id"]) and not pairs["in_training"].any()


def test_summary_statistics(files) -> None:
    # The implicit reward orders p1 as pass > wrong answer > crash > syntax error except that it
    # puts the crash above the wrong answer; p2 is ordered the wrong way round.
    rewards = {"p1/0": 1.0, "p1/4": 1.0, "p1/1": 0.5, "p1/2": 0.7, "p1/3": -1.0}
    rewards |= {"p2/0": -0.1, "p2/1": 0.2}
    df = scored(files, rewards)
    pairs = reward_pairs(df, load_training_pairs(files["pairs"]))
    summary = summarize(df, pairs)
    assert summary["responses"] == 7 and summary["distinct_responses"] == 6
    assert summary["pairs"] == 7 and summary["pairs_in_training"] == 1
    # Rule order: 7 pairs, wrong in two (crash > wrong answer, p2).
    severe = summary["more_severe_ranked_lower"]
    assert severe["pairs"] == 7 and severe["ranked_lower"] == pytest.approx(5 / 7)
    failing = summary["more_severe_ranked_lower_failing"]
    assert failing["pairs"] == 3 and failing["ranked_lower"] == pytest.approx(2 / 3)
    assert summary["fewer_passed_ranked_lower_held_out"]["pairs"] == 6
    # Distinct responses: frac 1, .5, .25, 0, 1, 0 vs rewards 1, .5, .7, -1, -.1, .2.
    expected = spearman([1, 0.5, 0.25, 0, 1, 0], [1.0, 0.5, 0.7, -1.0, -0.1, 0.2])
    assert summary["spearman_implicit_vs_frac_passed"] == pytest.approx(expected)
    within = summary["spearman_implicit_vs_frac_passed_within_problem"]
    assert within["problems"] == 1 and within["mean"] == pytest.approx(0.8)
    assert summary["failing_pair_examples"][0]["b_status"] == "runtime_error"


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Average ranks for ties: x ranks 1, 2.5, 2.5, 4; y ranks 1, 2, 3, 4.
    assert spearman([0, 1, 1, 2], [1, 2, 3, 4]) == pytest.approx(0.9486833)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_cli_end_to_end(files, tmp_path, tmp_path_factory) -> None:
    base = tiny_model_dir(tmp_path_factory)
    policy = tmp_path / "dpo"
    shutil.copytree(build_tiny_model(tmp_path_factory.mktemp("p") / "m", seed=3), policy)
    (policy / "train_summary.json").write_text(
        json.dumps({"training_args": {"beta": 0.25, "max_length": 64}})
    )
    out = tmp_path / "out"
    argv = [
        "--problems", str(files["problems"]), "--samples", str(files["samples"]),
        "--executions", str(files["executions"]), "--train-pairs", str(files["pairs"]),
        "--policy-model", str(policy), "--ref-model", str(base),
        "--out-responses", str(out / "r.csv"), "--out-pairs", str(out / "p.csv"),
        "--out-summary", str(out / "s.json"), "--out-figure", str(out / "f.png"),
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "s.json").read_text())
    assert summary["beta"] == 0.25 and summary["max_length"] == 64
    responses = pd.read_csv(out / "r.csv")
    assert len(responses) == 7 and "raw" not in responses.columns
    assert responses["implicit_reward"].to_numpy() == pytest.approx(
        0.25 * (responses["logp_policy"] - responses["logp_ref"]).to_numpy(), abs=1e-5
    )
    assert len(pd.read_csv(out / "p.csv")) == summary["pairs"] == 7
    assert (out / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_needs_a_beta(files, tmp_path, tmp_path_factory) -> None:
    base = str(tiny_model_dir(tmp_path_factory))
    argv = [
        "--problems", str(files["problems"]), "--samples", str(files["samples"]),
        "--executions", str(files["executions"]), "--policy-model", base, "--ref-model", base,
        "--out-responses", "r.csv", "--out-pairs", "p.csv", "--out-summary", "s.json",
    ]  # fmt: skip
    with pytest.raises(InputError, match="give --beta"):
        main(argv)
