"""Generation stops where the model stops, for the real tokenizers of the paper's three models.

The stop tokens come from the model's files alone (``../shared/models/``: generation config,
tokenizer, chat template). Tiny models trained on one conversation in each model's template
(``tests/chatmodels.py``) then show it end to end: a sampled response ends at the end-of-turn
token, holds no template markup, and its extracted code has no special token in it; stopping at
``config.json``'s eos alone lets CodeQwen run on into the next user turn.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chatmodels import (  # noqa: E402
    ANSWER,
    FOLLOW_UP,
    PAPER_MODELS,
    QUESTION,
    SHARED_MODELS,
    build_chat_model,
    load_real_tokenizer,
)

from codedpo.sampling.sample import generate_responses  # noqa: E402
from codedpo.sampling.stops import stop_tokens, template_end_of_turn  # noqa: E402

needs_shared = pytest.mark.skipif(not SHARED_MODELS.exists(), reason="../shared/models not present")
pytestmark = pytest.mark.real_data

# What each model's files say (../shared/models/README.md).
EXPECTED = {
    "deepseek": {"generation_config": [32021], "tokenizer": [32021], "chat_template": [32021]},
    # No generation_config.json: transformers falls back to config.json's eos, 2.
    "codeqwen": {"generation_config": [2], "tokenizer": [4], "chat_template": [4]},
    "codellama": {"generation_config": [2], "tokenizer": [2], "chat_template": [2]},
}
STOP_IDS = {"deepseek": (32021,), "codeqwen": (2, 4), "codellama": (2,)}
# Text that only template markup (or the next turn) would put into a response.
MARKUP = [
    "<|EOT|>",
    "### Instruction",
    "### Response",
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "[INST]",
    "[/INST]",
    "</s>",
    "<s>",
    FOLLOW_UP,
]
PROBLEM = {
    "task_id": "chat/inc",
    "prompt": QUESTION,
    "entry_point": "inc",
    "tests": {"kind": "call", "cases": []},
}


@needs_shared
@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_stop_tokens_come_from_the_model_files(name):
    tokenizer = load_real_tokenizer(name)
    stop = stop_tokens(str(SHARED_MODELS / PAPER_MODELS[name]), tokenizer)
    assert stop.sources == EXPECTED[name]
    assert stop.ids == STOP_IDS[name]
    assert template_end_of_turn(tokenizer) == EXPECTED[name]["chat_template"][0]


@pytest.fixture(scope="module")
def chat_models(tmp_path_factory) -> dict[str, Path]:
    start = time.monotonic()
    root = tmp_path_factory.mktemp("chat-models")
    models = {name: build_chat_model(name, root / name) for name in PAPER_MODELS}
    print(f"three chat models built in {time.monotonic() - start:.1f} s")
    return models


@needs_shared
@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_a_sampled_response_ends_at_the_end_of_turn(name, chat_models):
    tokenizer = load_real_tokenizer(name)
    special = [t for t in tokenizer.all_special_tokens if t]
    records = generate_responses(
        str(chat_models[name]),
        [PROBLEM],
        n=4,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=48,
        seed=1,
        progress=False,
    )
    answer_tokens = len(tokenizer(ANSWER, add_special_tokens=False)["input_ids"])
    for record in records:
        assert record["finish_reason"] == "stop", record
        assert record["generator"]["stop_token_ids"] == list(STOP_IDS[name])
        # The answer and the stop token, nothing after it (CodeLlama's template puts a space
        # token before </s>, DeepSeek's a newline before <|EOT|>).
        assert record["raw"].strip() == ANSWER, record["raw"]
        assert answer_tokens < record["num_tokens"] <= answer_tokens + 2
        assert record["solution"] == "def inc(x):\n    return x + 1\n"
        for text in (record["raw"], record["solution"]):
            assert not [m for m in MARKUP + special if m in text], text


@needs_shared
def test_codeqwen_runs_into_the_next_turn_without_its_template_stop(chat_models):
    """The control: with only config.json's eos (2) as the stop, as transformers' own defaults
    for this checkpoint would have it, the model writes <|im_end|> and goes on."""
    import torch

    from codedpo.sampling.hf_backend import generate_token_ids, load_model
    from codedpo.sampling.records import finish
    from codedpo.sampling.requests import build_requests, load_tokenizer, prompt_ids

    path = str(chat_models["codeqwen"])
    tokenizer = load_tokenizer(path)
    assert type(tokenizer).__name__ == "LlamaTokenizer"  # the class CodeQwen's files need
    model = load_model(path, device="cpu")
    torch.manual_seed(0)
    ids = generate_token_ids(
        model,
        prompt_ids(tokenizer, [PROBLEM], path),
        build_requests([PROBLEM], n=1, seed=1, greedy=True),
        stop_ids=[2],
        max_new_tokens=48,
        temperature=1.0,
        top_p=1.0,
        batch_size=1,
        pad_id=0,
        progress=False,
    )[0]
    assert 4 in ids  # <|im_end|> was written, and generation went on
    text = finish(ids, [2], tokenizer).text
    assert text.startswith(ANSWER) and FOLLOW_UP in text, text
    assert finish(ids, [2, 4], tokenizer).text == ANSWER
