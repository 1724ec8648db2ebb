"""Tests of the embedded demo: the problem set and the tiny policy model built from it."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from codedpo.execution.sandbox.codec import decode
from codedpo.io import InputError, read_jsonl, sha256_file
from codedpo.models import demo, demo_families

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ROOT / "src/codedpo/data/demo/problems.jsonl"
GENERATOR = ROOT / "scripts/make_demo_problems.py"
PROMPT_RE = re.compile(r"^Write a Python function `(\w+)\(([\w, ]*)\)` that .+\.$")


def _records() -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl(PROBLEMS)]


def _outcomes(code: str, record: dict[str, Any]) -> list[bool]:
    """Which cases ``code`` passes, run in-process: only for our own canonical/buggy code."""
    namespace: dict[str, Any] = {}
    exec(compile(code, record["task_id"], "exec"), namespace)  # noqa: S102
    fn = namespace[record["entry_point"]]
    results = []
    for case in record["tests"]["cases"]:
        expected = decode(case["output"])
        try:
            got = fn(*copy.deepcopy(decode(case["input"])))
        except Exception:  # noqa: BLE001 - a crash is a failed case
            results.append(False)
            continue
        results.append(type(got) is type(expected) and got == expected)
    return results


# --- the problem set -----------------------------------------------------------------------------


def test_problems_follow_the_format():
    records = _records()
    assert len(records) >= 64
    ids = [r["task_id"] for r in records]
    assert len(set(ids)) == len(ids)
    splits = Counter(r["split"] for r in records)
    assert set(splits) == {"train", "eval"}
    assert splits["train"] >= 40 and splits["eval"] >= 20
    for r in records:
        assert r["task_id"] == f"demo/{r['entry_point']}"
        assert r["source"] == "demo"
        match = PROMPT_RE.match(r["prompt"])
        assert match and match.group(1) == r["entry_point"], r["prompt"]
        assert r["canonical_solution"].startswith(f"def {r['entry_point']}(")
        tests = r["tests"]
        assert tests["kind"] == "call" and tests["check"] == "exact"
        assert 5 <= len(tests["cases"]) <= 8
        for case in tests["cases"]:
            assert isinstance(case["input"], list) and "output" in case
        assert isinstance(r["meta"]["buggy_solution"], str)
        assert r["meta"]["buggy_solution"] != r["canonical_solution"]


def test_canonical_solutions_pass_and_buggy_ones_fail():
    for r in _records():
        assert all(_outcomes(r["canonical_solution"], r)), r["task_id"]
        assert not all(_outcomes(r["meta"]["buggy_solution"], r)), r["task_id"]


def test_every_bug_family_is_in_both_splits():
    # DPO learns on train and is scored on eval: a family seen only on one side cannot transfer.
    by_split: dict[str, set[str]] = {"train": set(), "eval": set()}
    for r in _records():
        by_split[r["split"]].add(r["meta"]["bug_family"])
    assert by_split["train"] == by_split["eval"]
    assert len(by_split["train"]) >= 4


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_problems", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while building the class.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_problems_match_the_generator(tmp_path):
    generator = _load_generator()
    out = tmp_path / "problems.jsonl"
    assert generator.main(["--out", str(out)]) == 0
    assert out.read_bytes() == PROBLEMS.read_bytes(), "rerun scripts/make_demo_problems.py"


def test_generator_rejects_a_bug_that_passes_every_case():
    generator = _load_generator()
    bad = generator.P(
        "twice", "x", "returns twice x",
        "def twice(x):\n    return x * 2\n", ("x * 2", "x + x"), "sign",
        [([1], 2), ([2], 4), ([0], 0), ([-3], -6), ([5], 10)],
    )  # fmt: skip
    assert any("buggy solution passes" in e for e in generator.check(bad))


# --- the model builder ---------------------------------------------------------------------------


def test_load_demo_problems_requires_a_buggy_solution(tmp_path):
    record = _records()[0]
    del record["meta"]
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"p.jsonl:1: .*buggy_solution"):
        demo.load_demo_problems(path)


def _build_small(out: Path, seed: int = 1) -> None:
    demo.build_demo_model(
        PROBLEMS, out, seed=seed, hidden_size=32, num_layers=1, steps=4, threads=1,
        progress=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "model"
    _build_small(out)
    return out


SHARED_MODELS = ROOT.parent / "shared" / "models"
REAL = {
    "deepseek-coder": "deepseek-ai__deepseek-coder-6.7b-instruct",
    "codellama": "codellama__CodeLlama-7b-Instruct-hf",
    "codeqwen": "Qwen__CodeQwen1.5-7B-Chat",
}


def _real_file(family: str, name: str) -> dict:
    return json.loads((SHARED_MODELS / REAL[family] / name).read_text())


@pytest.mark.real_data
@pytest.mark.parametrize("family", sorted(REAL))
def test_family_templates_are_the_real_models(family):
    """Each family's chat template is its hub model's, character for character."""
    real = _real_file(family, "tokenizer_config.json")
    assert demo_families.FAMILIES[family].chat_template == real["chat_template"]
    spec = demo_families.FAMILIES[family]
    assert spec.imitates.replace("/", "__") == REAL[family]
    assert spec.model_type == _real_file(family, "config.json")["model_type"]


@pytest.fixture(scope="module", params=sorted(REAL))
def family_model(request, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(f"small-{request.param}") / "model"
    demo.build_demo_model(
        PROBLEMS, out, family=request.param, hidden_size=32, num_layers=1, steps=4,
        threads=1, progress=False,
    )  # fmt: skip
    return request.param, out


@pytest.mark.real_data
def test_small_build_loads_like_a_hub_model(family_model):
    """A demo policy of each family, with its locally trained tokenizer, loads as a hub model
    and lays out its stop tokens as the hub model does: config.json's eos/bos, the tokenizer's
    eos (the end of a turn) and generation_config.json's eos_token_id."""
    from transformers import AutoModelForCausalLM, LlamaTokenizer

    from codedpo.models import chat

    family, path = family_model
    spec = demo_families.FAMILIES[family]
    assert not list(path.parent.glob(".*.tmp")), "temporary build directory left behind"
    info = json.loads((path / "demo_model.json").read_text())
    assert info["problems_sha256"] == sha256_file(PROBLEMS)
    assert info["imitates"] == spec.imitates and info["args"]["family"] == family
    assert "hub" not in info  # not the hub model: no paper numbers are matched to it

    tokenizer = chat.load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == spec.model_type
    token = tokenizer.convert_ids_to_tokens
    assert tokenizer.eos_token == spec.eos and tokenizer.bos_token == spec.bos
    assert tokenizer.pad_token == spec.pad  # CodeLlama's hub tokenizer has none
    config = json.loads((path / "config.json").read_text())
    real_config = _real_file(family, "config.json")
    assert token(config["eos_token_id"]) == spec.config_eos
    assert token(config["bos_token_id"]) == spec.bos
    # CodeQwen1.5: config.json says <|endoftext|> for both; the turn ends with <|im_end|>.
    assert (config["eos_token_id"] == config["bos_token_id"]) == (
        real_config["eos_token_id"] == real_config["bos_token_id"]
    )
    generation = json.loads((path / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    assert [token(i) for i in eos] == list(spec.generation_eos)
    assert eos[0] == tokenizer.eos_token_id  # the end-of-turn token stops generation
    if family != "codeqwen":  # the hub files' own layout (CodeQwen's was not available)
        real = _real_file(family, "generation_config.json")
        assert set(generation) - {"transformers_version"} == set(real) - {"transformers_version"}

    # The template renders exactly as the real tokenizer renders it.
    real_tokenizer_dir = SHARED_MODELS / REAL[family]
    if family == "codeqwen":
        real_tokenizer = LlamaTokenizer.from_pretrained(real_tokenizer_dir)
    else:
        real_tokenizer = chat.load_tokenizer(str(real_tokenizer_dir))
    prompt = [{"role": "user", "content": "Write a Python function `f(x)` that returns x."}]
    answer = [{"role": "assistant", "content": "```python\ndef f(x):\n    return x\n```"}]
    for messages, gen in ((prompt, True), (prompt + answer, False)):
        ours = tokenizer.apply_chat_template(messages, add_generation_prompt=gen, tokenize=False)
        theirs = real_tokenizer.apply_chat_template(
            messages, add_generation_prompt=gen, tokenize=False
        )
        assert ours == theirs
    # One BOS where the template writes it, none added on top (DeepSeek, CodeLlama add it).
    ids = chat.prompt_ids(tokenizer, prompt)
    assert ids.count(tokenizer.bos_token_id) == (0 if family == "codeqwen" else 1)
    assert (tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id) == spec.add_bos
    turn = chat.template_turn_ids(tokenizer, prompt, answer[0]["content"])
    assert turn[-1] == tokenizer.eos_token_id and turn.count(tokenizer.eos_token_id) == 1

    batch = tokenizer.apply_chat_template(
        prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**batch, do_sample=False, max_new_tokens=8)
    assert out.shape[1] > batch["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(out[0], skip_special_tokens=True), str)


@pytest.mark.real_data
@pytest.mark.parametrize("family", sorted(REAL))
def test_build_on_the_real_tokenizer_files(family, tmp_path):
    """The tokenizer source can be the real files: the policy keeps their vocabulary and
    template and lays out its stop tokens as with a local tokenizer."""
    from codedpo.models import chat

    cls = "LlamaTokenizer" if family == "codeqwen" else None
    out = tmp_path / "model"
    demo.build_demo_model(
        PROBLEMS, out, family=family, tokenizer=str(SHARED_MODELS / REAL[family]),
        tokenizer_class=cls, hidden_size=16, num_layers=1, steps=2, progress=False,
    )  # fmt: skip
    tokenizer = chat.load_tokenizer(out)
    real_config = _real_file(family, "config.json")
    config = json.loads((out / "config.json").read_text())
    assert config["eos_token_id"] == real_config["eos_token_id"]  # the real ids
    assert config["bos_token_id"] == real_config["bos_token_id"]
    assert config["vocab_size"] >= len(tokenizer) and config["vocab_size"] % 64 == 0
    text = "def f(x):\n    return x + 1\n"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    info = json.loads((out / "demo_model.json").read_text())
    assert info["args"]["tokenizer"].endswith(REAL[family])


@pytest.mark.real_data
def test_bad_tokenizer_source_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="tokenizer directory not found"):
        demo.build_demo_model(PROBLEMS, tmp_path / "m", tokenizer=str(tmp_path / "none"),
                              steps=1, progress=False)  # fmt: skip
    with pytest.raises(InputError, match=r"eos is '<\|EOT\|>', but family 'codellama'"):
        demo.build_demo_model(PROBLEMS, tmp_path / "m", family="codellama",
                              tokenizer=str(SHARED_MODELS / REAL["deepseek-coder"]),
                              steps=1, progress=False)  # fmt: skip
    with pytest.raises(InputError, match="demo family 'gpt' is not one of"):
        demo.build_demo_model(PROBLEMS, tmp_path / "m", family="gpt", steps=1, progress=False)
    assert not (tmp_path / "m").exists()


def test_build_is_deterministic_given_the_seed(small_model, tmp_path):
    from safetensors.torch import load_file

    again, other = tmp_path / "again", tmp_path / "other"
    _build_small(again, seed=1)
    _build_small(other, seed=2)
    first = load_file(small_model / "model.safetensors")
    second = load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (small_model / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()
    third = load_file(other / "model.safetensors")
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_rebuild_replaces_an_existing_directory(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    _build_small(out)
    assert not (out / "stale.txt").exists()
    assert (out / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_main_builds_from_the_command_line(tmp_path):
    out = tmp_path / "cli"
    argv = ["--problems", str(PROBLEMS), "--out", str(out), "--seed", "3", "--hidden-size", "32",
            "--num-layers", "1", "--steps", "2", "--no-progress"]  # fmt: skip
    assert demo.main(argv) == 0
    info = json.loads((out / "demo_model.json").read_text())
    assert info["args"]["seed"] == 3 and info["args"]["hidden_size"] == 32


# --- calibration: the default model must give DPO something to work with ------------------------

# Runs model-written code in a child process, one alarm per sample, so a stray loop or crash in a
# sample cannot hang or break the test process (the project's sandbox is for the real pipeline).
def test_pretraining_on_the_subset_codedpo_prepare_draws(tmp_path):
    """pretrain_split / pretrain_max_problems / pretrain_seed pick exactly the problems that a
    training source with the same split, max_problems and seed gives (configs/rehearsal.yaml)."""
    from codedpo.problems.prepare import prepare

    out = tmp_path / "m"
    demo.build_demo_model(PROBLEMS, out, pretrain_split="train", pretrain_max_problems=5,
                          pretrain_seed=7, hidden_size=16, num_layers=1, steps=1,
                          progress=False)  # fmt: skip
    info = json.loads((out / "demo_model.json").read_text())
    assert info["num_problems"] == 5
    chosen = {r["task_id"] for r in prepare(PROBLEMS, "problems", "train", max_problems=5, seed=7)}
    assert info["pretrain_task_ids"] == sorted(chosen)


def test_fewer_problems_than_a_batch_still_trains(tmp_path):
    out = tmp_path / "m"
    demo.build_demo_model(PROBLEMS, out, pretrain_split="train", pretrain_max_problems=3,
                          batch_size=8, hidden_size=16, num_layers=1, steps=3,
                          progress=False)  # fmt: skip
    info = json.loads((out / "demo_model.json").read_text())
    assert info["num_problems"] == 3 and info["final_loss"] > 0
