"""Tiny chat models on the real tokenizers of the paper's three models, for stop-token tests.

``../shared/models/`` holds the tokenizer and config files (no weights) of DeepSeek-Coder-6.7B-
Instruct, CodeQwen1.5-7B-Chat and CodeLlama-7B-Instruct. :func:`build_chat_model` gives each a
2-layer model of its architecture family and vocabulary, trained here for a few seconds to
memorize one two-turn conversation rendered with the model's own chat template. Asked the first
question, such a model answers it, writes the template's end-of-turn token and then, if nothing
stops it, goes on into the next turn's markup (``<|im_start|>user``, ``### Instruction:``,
``[INST]``): exactly what stopping at the wrong token looks like on a real model.

The model directory carries the real model's own generation config where it has one
(DeepSeek-Coder: eos 32021; CodeLlama: eos 2) and none where it has none (CodeQwen, whose
config.json says eos 2 while its tokenizer and template end a turn with ``<|im_end|>``, 4).
"""

from __future__ import annotations

import functools
import json
import math
import shutil
from pathlib import Path

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"

PAPER_MODELS = {
    "deepseek": "deepseek-ai__deepseek-coder-6.7b-instruct",
    "codeqwen": "Qwen__CodeQwen1.5-7B-Chat",
    "codellama": "codellama__CodeLlama-7b-Instruct-hf",
}

QUESTION = "Write a Python function `inc(x)` that returns x plus one."
ANSWER = "```python\ndef inc(x):\n    return x + 1\n```"
FOLLOW_UP = "Now write `dec(x)` that returns x minus one."
FOLLOW_UP_ANSWER = "```python\ndef dec(x):\n    return x - 1\n```"

CONVERSATION = [
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": ANSWER},
    {"role": "user", "content": FOLLOW_UP},
    {"role": "assistant", "content": FOLLOW_UP_ANSWER},
]


@functools.cache
def load_real_tokenizer(name: str):
    """The paper model's tokenizer; CodeQwen's files load correctly only as a LlamaTokenizer
    (``../shared/models/README.md``, note Q2). Loaded once per session: callers must not change
    it."""
    from transformers import AutoTokenizer, LlamaTokenizer

    path = SHARED_MODELS / PAPER_MODELS[name]
    if name == "codeqwen":
        return LlamaTokenizer.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def build_chat_model(name: str, out: Path, steps: int = 100, seed: int = 0) -> Path:
    """Save a tiny trained model with the real tokenizer of ``name`` to ``out``.

    Trained: the transformer layers and the (tied) embedding rows of the tokens the conversation
    uses. The other rows are zero, so each of them has logit 0 and the full-vocabulary softmax is
    exactly the softmax over the used tokens plus one column holding ``log(count of the others)``:
    a step costs the same on a 92k vocabulary as on a small one, and the saved model computes
    the distribution it was trained on.
    """

    import torch
    import torch.nn.functional as F
    from transformers import AutoConfig, AutoModelForCausalLM

    from codedpo.sampling.requests import render_prompt

    source = SHARED_MODELS / PAPER_MODELS[name]
    real = json.loads((source / "config.json").read_text())
    tokenizer = load_real_tokenizer(name)
    config = AutoConfig.for_model(
        real["model_type"],
        vocab_size=real["vocab_size"],
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=real.get("bos_token_id"),
        eos_token_id=real.get("eos_token_id"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompt = render_prompt(tokenizer, QUESTION)
    if ids[: len(prompt)] != prompt:
        raise AssertionError(f"{name}: the rendered prompt is not a prefix of the conversation")
    used = sorted(set(ids))
    local = {token: k for k, token in enumerate(used)}
    inputs = torch.tensor([[local[t] for t in ids]])
    # Learn what follows the question (the answer, the end of turn, the next turn); memorizing
    # the system prompt would only cost steps.
    targets = inputs[0, 1:].clone()
    targets[: len(prompt) - 1] = -100
    embeddings = model.get_input_embeddings().weight
    rows = torch.nn.Parameter(embeddings.detach()[used].clone())
    embeddings.requires_grad_(False)
    others = torch.full((len(ids) - 1, 1), math.log(embeddings.shape[0] - len(used)))
    trained = [p for p in model.parameters() if p.requires_grad] + [rows]
    optimizer = torch.optim.AdamW(trained, lr=1e-2)
    model.train()
    for _ in range(steps):
        hidden = model.model(inputs_embeds=rows[inputs]).last_hidden_state[0, :-1]
        loss = F.cross_entropy(torch.cat([hidden @ rows.T, others], dim=1), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        embeddings.zero_()
        embeddings[used] = rows
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # save_pretrained writes a generation config derived from config.json; keep the real
    # model's own file instead, or none where the real model has none.
    (out / "generation_config.json").unlink(missing_ok=True)
    if (source / "generation_config.json").exists():
        shutil.copy(source / "generation_config.json", out / "generation_config.json")
    (out / "train_loss.txt").write_text(f"{loss.item():.4f}\n")
    return out
