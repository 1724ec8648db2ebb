"""Sampling from a tiny local Llama: determinism, counts, sharding, greedy, the sampler itself."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import tiny_model_dir  # noqa: E402

from codedpo.generate import (  # noqa: E402
    generate_responses,
    load_problems,
    main,
    sample_seed,
)
from codedpo.io import InputError  # noqa: E402

SAMPLING = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 12}


def identity_extract(response: str, problem: dict) -> str:
    return response


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory)


def make_problems(count: int) -> list[dict]:
    return [
        {
            "task_id": f"demo/p{k}",
            "prompt": f"Write a Python function `f{k}(x)` that returns x plus {k}." + " pad" * k,
            "entry_point": f"f{k}",
            "split": "train" if k % 3 else "eval",
            "tests": {"kind": "call", "cases": []},
        }
        for k in range(count)
    ]


def by_id(records: list[dict]) -> dict[str, str]:
    return {r["sample_id"]: r["raw"] for r in records}


def test_sampling_is_deterministic_with_n_records_per_problem(model_dir):
    problems = make_problems(3)
    kwargs = dict(n=4, seed=1, extract=identity_extract, **SAMPLING)
    first = generate_responses(str(model_dir), problems, batch_size=5, **kwargs)
    again = generate_responses(str(model_dir), problems, batch_size=5, **kwargs)
    assert first == again
    assert [(r["task_id"], r["index"]) for r in first] == [
        (p["task_id"], i) for p in problems for i in range(4)
    ]
    assert first[5]["sample_id"] == "demo/p1/1"
    assert first[5]["prompt"] == problems[1]["prompt"]
    assert all(r["solution"] == r["raw"] for r in first)
    # Random weights sample noise: the samples of one problem differ, and another seed differs.
    assert len({r["raw"] for r in first[:4]}) > 1
    other = generate_responses(str(model_dir), problems, batch_size=5, **{**kwargs, "seed": 2})
    assert by_id(other) != by_id(first)


def test_shards_partition_problems_and_do_not_change_samples(model_dir, tmp_path):
    problems = make_problems(7)
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    shards = [load_problems(path, shard=i, num_shards=3) for i in range(3)]
    ids = [[p["task_id"] for p in shard] for shard in shards]
    assert sorted(sum(ids, [])) == sorted(p["task_id"] for p in problems)
    assert ids[1] == ["demo/p1", "demo/p4"]
    assert [p["task_id"] for p in load_problems(path, split="eval")] == [
        "demo/p0",
        "demo/p3",
        "demo/p6",
    ]

    kwargs = dict(n=3, seed=7, extract=identity_extract, **SAMPLING)
    whole = by_id(generate_responses(str(model_dir), problems, batch_size=64, **kwargs))
    parts: dict[str, str] = {}
    for shard in shards:
        parts.update(by_id(generate_responses(str(model_dir), shard, batch_size=4, **kwargs)))
    assert parts == whole


def test_greedy_gives_one_deterministic_sample_per_problem(model_dir):
    problems = make_problems(3)
    kwargs = dict(n=8, seed=1, greedy=True, extract=identity_extract, **SAMPLING)
    first = generate_responses(str(model_dir), problems, **kwargs)
    assert [r["sample_id"] for r in first] == [f"{p['task_id']}/0" for p in problems]
    assert generate_responses(str(model_dir), problems, **{**kwargs, "seed": 2}) == first


def test_checkpoint_generation_defaults_are_ignored(model_dir, tmp_path):
    # Instruct checkpoints ship sampling defaults (Qwen: top_k 20, repetition_penalty 1.05);
    # the samples must follow only our temperature and top-p.
    from transformers import GenerationConfig

    odd = tmp_path / "odd-defaults"
    shutil.copytree(model_dir, odd)
    GenerationConfig(
        do_sample=True, top_k=1, repetition_penalty=50.0, no_repeat_ngram_size=1, eos_token_id=0
    ).save_pretrained(odd)
    problems = make_problems(2)
    for greedy in (False, True):
        kwargs = dict(n=2, seed=1, greedy=greedy, extract=identity_extract, **SAMPLING)
        expected = generate_responses(str(model_dir), problems, **kwargs)
        assert generate_responses(str(odd), problems, **kwargs) == expected


def test_row_sampler_draws_from_the_temperature_top_p_distribution():
    import torch

    from codedpo.generate import _row_sampler

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -3.0])
    rows, temperature, top_p = 4000, 0.8, 0.9
    processors = _row_sampler(range(rows), temperature, top_p, "cpu")
    scores = processors(torch.zeros(rows, 1, dtype=torch.long), logits.repeat(rows, 1))
    counts = torch.bincount(scores.argmax(-1), minlength=5).float() / rows

    probs = torch.softmax(logits / temperature, -1)
    # top-p keeps the smallest set of most likely tokens whose mass reaches top_p.
    keep = (probs.cumsum(-1) - probs) < top_p
    expected = torch.where(keep, probs, 0.0) / probs[keep].sum()
    assert keep.tolist() == [True, True, True, False, False]
    assert torch.allclose(counts, expected, atol=0.03), (counts, expected)


def test_sample_seed_depends_on_seed_task_and_index():
    seeds = {sample_seed(s, t, i) for s in (1, 2) for t in ("a", "b") for i in range(3)}
    assert len(seeds) == 12
    assert sample_seed(1, "a", 0) == sample_seed(1, "a", 0)


def test_missing_model_path_is_named(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(InputError, match="no-such-model"):
        generate_responses(
            missing, make_problems(1), n=1, seed=1, extract=identity_extract, **SAMPLING
        )


def test_cli_writes_samples_for_one_split_and_shard(model_dir, tmp_path, capsys):
    pytest.importorskip("codedpo.extract")
    problems = make_problems(6)
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    out = tmp_path / "out" / "samples.jsonl"
    args = ["--model", str(model_dir), "--problems", str(path), "--out", str(out)]
    args += ["--split", "train", "--shard", "1", "--num-shards", "2", "--n", "2"]
    args += ["--max-new-tokens", "8", "--seed", "3"]
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    # train problems are p1, p2, p4, p5; shard 1 of 2 keeps p2 and p5.
    assert [r["sample_id"] for r in records] == ["demo/p2/0", "demo/p2/1", "demo/p5/0", "demo/p5/1"]
    assert all(isinstance(r["solution"], str) for r in records)

    assert main(args[:1] + [str(tmp_path / "missing")] + args[2:]) == 2
    assert "missing" in capsys.readouterr().err
