"""Sampling from tiny local Llamas: determinism, counts, sharding, greedy, the sampler itself, the
HF engine against transformers' generate and against itself at every batching, the records."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import tiny_model_dir  # noqa: E402

from codedpo.io import InputError  # noqa: E402
from codedpo.problems.load import load_problems  # noqa: E402
from codedpo.sampling.hf_backend import generate_token_ids  # noqa: E402
from codedpo.sampling.requests import build_requests, prompt_ids  # noqa: E402
from codedpo.sampling.sample import (  # noqa: E402
    generate_responses,
    main,
    sample_seed,
    shard_of,
)

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
            "tests": {"kind": "call", "cases": [{"input": [1], "output": 1 + k}]},
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
    # Random weights never write the stop token in 12 steps: every sample ends at the budget.
    assert {(r["finish_reason"], r["num_tokens"]) for r in first} == {("length", 12)}
    generator = first[0]["generator"]
    assert generator["backend"] == "hf" and set(generator["versions"]) == {"transformers", "torch"}
    assert generator["settings"] == {
        "n": 4,
        "greedy": False,
        "temperature": 0.8,
        "top_p": 0.95,
        "max_new_tokens": 12,
        "seed": 1,
        "dtype": "float32",
    }
    assert generator["stop_token_ids"] == [0]  # <|end|>: the eos of the files and the template
    # Random weights sample noise: the samples of one problem differ, and another seed differs.
    assert len({r["raw"] for r in first[:4]}) > 1
    other = generate_responses(str(model_dir), problems, batch_size=5, **{**kwargs, "seed": 2})
    assert by_id(other) != by_id(first)


def test_shards_partition_problems_and_do_not_change_samples(model_dir, tmp_path):
    problems = make_problems(7)
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    shards = [shard_of(list(load_problems(path).values()), i, 3) for i in range(3)]
    ids = [[p["task_id"] for p in shard] for shard in shards]
    assert sorted(sum(ids, [])) == sorted(p["task_id"] for p in problems)
    assert ids[1] == ["demo/p1", "demo/p4"]
    assert list(load_problems(path, split="eval")) == [
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


def test_sampler_draws_from_the_temperature_top_p_distribution():
    import torch

    from codedpo.sampling.hf_backend import _gumbel, _sampler

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -3.0])
    rows, temperature, top_p = 4000, 0.8, 0.9
    generators = [torch.Generator().manual_seed(s) for s in range(rows)]
    scores = _gumbel(_sampler(temperature, top_p)(None, logits.repeat(rows, 1)), generators)
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
    pytest.importorskip("codedpo.sampling.extract")
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


def test_vllm_backend_without_vllm_names_the_setting(model_dir, tmp_path, capsys, monkeypatch):
    # A machine without vLLM (`make test` installs its CPU build): its import fails.
    monkeypatch.setitem(sys.modules, "vllm", None)
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps(make_problems(1)[0]) + "\n")
    out = tmp_path / "samples.jsonl"
    args = ["--model", str(model_dir), "--problems", str(path), "--out", str(out)]
    assert main([*args, "--backend", "vllm"]) == 2
    err = capsys.readouterr().err
    assert "sampling.backend" in err and "eval.backend" in err and "pip install '.[vllm]'" in err
    assert "make vllm-cpu" in err
    assert not out.exists()


# --- the HF engine: batching, prefix sharing, refills -------------------------------------------

# A tenth of the vocabulary stops a sequence, so sequences end at many different lengths and rows
# leave and join the running batch all the time.
STOPS = list(range(40))


@pytest.fixture(scope="module")
def sharp_model():
    """Random weights with a large init: each next token depends sharply on the whole context, so
    a wrong cache, mask or position after a refill changes what is generated."""
    import torch
    from tinymodel import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer


def run_engine(model, prompts, requests, batch_size, refill_fraction=0.75):
    return generate_token_ids(
        model,
        prompts,
        requests,
        stop_ids=STOPS,
        max_new_tokens=16,
        temperature=0.8,
        top_p=0.95,
        batch_size=batch_size,
        pad_id=0,
        refill_fraction=refill_fraction,
        progress=False,
    )


def test_refills_are_used_for_llama_caches(sharp_model):
    from codedpo.sampling.hf_backend import _growing, _new_cache

    # Llama's cache layers are plain DynamicLayers: the engine replaces them with growing ones,
    # and the tests below then exercise refills, trims and in-place growth.
    assert _growing(_new_cache(sharp_model[0]))


def test_batched_greedy_equals_generate_one_prompt_at_a_time(sharp_model):
    import torch

    model, tokenizer = sharp_model
    problems = make_problems(9)
    prompts = prompt_ids(tokenizer, problems, "sharp")
    requests = build_requests(problems, n=1, seed=0, greedy=True)
    expected = []
    for request in requests:
        prompt = torch.tensor([prompts[request.problem]])
        with torch.inference_mode():
            out = model.generate(
                prompt, max_new_tokens=16, do_sample=False, eos_token_id=STOPS, pad_token_id=0
            )
        ids = out[0, prompt.shape[1] :].tolist()
        ends = [k for k, t in enumerate(ids) if t in STOPS]
        expected.append(ids[: ends[0] + 1] if ends else ids)
    assert len({len(ids) for ids in expected}) >= 4  # the rows finish at different steps
    for batch_size, refill_fraction in [(64, 0.75), (4, 1.0), (3, 0.5), (1, 0.75)]:
        got = run_engine(model, prompts, requests, batch_size, refill_fraction)
        assert got == expected, (batch_size, refill_fraction)


def test_samples_do_not_depend_on_batching_refills_or_prefix_sharing(sharp_model):
    model, tokenizer = sharp_model
    problems = make_problems(9)
    prompts = prompt_ids(tokenizer, problems, "sharp")
    requests = build_requests(problems, n=4, seed=3, greedy=False)
    alone = run_engine(model, prompts, requests, batch_size=1)
    assert len({len(ids) for ids in alone}) >= 6
    assert len({tuple(ids) for ids in alone}) > len(alone) * 3 // 4  # seeds differ per sample
    for batch_size, refill_fraction in [(64, 0.75), (5, 1.0), (7, 0.0), (36, 0.5)]:
        got = run_engine(model, prompts, requests, batch_size, refill_fraction)
        assert got == alone, (batch_size, refill_fraction)
