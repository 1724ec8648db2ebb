"""A tiny Llama and a locally trained tokenizer with a chat template, for offline tests.

The Hub is unreachable in tests, so the model the workflow would download is replaced by a
2-layer, 32-wide Llama with random weights and a byte-level BPE tokenizer trained here on a few
lines of Python. The chat template marks roles with special tokens so that the tokenized prompt
is always a prefix of the tokenized prompt + response (TRL's DPO and SFT rely on this).
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|bos|>"]

_CORPUS = [
    "def add_two(a, b):\n    return a + b\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "def reverse(s):\n    return s[::-1]\n",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
    "Write a Python function that returns the sum of a list of numbers.",
    "Here is the solution:\n```python\ndef f(x):\n    return x\n```",
    "class Solution:\n    def solve(self, nums: list[int]) -> int:\n        return max(nums)\n",
]


def build_tokenizer():
    """A byte-level BPE tokenizer (about 400 tokens) with no pad token: callers fall back to eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>", padding_side="left"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random Llama plus tokenizer to ``path`` (a ``from_pretrained`` directory)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_model_dir(tmp_path_factory) -> Path:
    """Build the tiny model once per test session (both test modules share it)."""
    path = tmp_path_factory.getbasetemp() / "tiny-llama"
    if not (path / "config.json").exists():
        build_tiny_model(path)
    return path


def kill_after_checkpoint(args: list[str], out: Path, log: Path) -> Path:
    """Run ``codedpo train ARGS`` (writing to ``out``) as a real process, SIGKILL it and all it
    started once it has saved a complete checkpoint in ``out.tmp/``; that checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from codedpo.training import resume

    tmp = out.with_name(out.name + ".tmp")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    root = Path(__file__).resolve().parents[1]
    with open(log, "w") as fh:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen([sys.executable, "-m", "codedpo", "train", *args], cwd=root,
                                env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        while resume.last_checkpoint(tmp) is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.02)
    finally:  # the run and everything it started (its sandboxes die with it anyway)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists(), "the run finished before it was killed"
    return resume.last_checkpoint(tmp)
