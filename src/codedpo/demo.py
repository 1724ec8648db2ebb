"""Build the demo policy model: a tiny Llama and its own tokenizer, trained from scratch on CPU.

The default workflow must run end to end without the Hugging Face Hub, so it builds its policy
from the embedded demo problems. The model is pretrained on chat-formatted texts
``user: prompt -> assistant: ```python <code> ``` <eos>`` for every demo problem (both splits),
each problem seen with its canonical solution *and* its ``meta.buggy_solution``. Sampling such a
model at temperature ~0.8 gives a mix of passing and failing programs, which is what the
preference-pair stage needs; greedy decoding picks one of the two variants per problem, so greedy
pass@1 starts near one half and has room to move. Because every buggy variant comes from one of a
few shared bug families, a preference DPO learns on the train split transfers to the eval split.

The saved directory loads like a hub model (``AutoModelForCausalLM.from_pretrained(out)``,
``AutoTokenizer.from_pretrained(out)``) and its tokenizer carries a chat template, so the
sampling and training stages treat it exactly like a real code model.

    python -m codedpo.demo --problems src/codedpo/data/demo/problems.jsonl \\
        --out results/models/demo-a --seed 1 --hidden-size 64 --num-layers 2 --steps 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codedpo.io import InputError, read_jsonl, sha256_file, write_json

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}

# Every turn opens with a special token and the generation prompt ends on one, so the rendered
# prompt is a token-exact prefix of prompt + answer (TRL's DPO and SFT split the two that way; a
# BPE merge across the boundary would shift it). `{% generation %}` marks the assistant's tokens
# for TRL's `assistant_only_loss`; elsewhere it renders as nothing.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}<|system|>{{ message['content'] }}"
    "{%- elif message['role'] == 'user' -%}<|user|>{{ message['content'] }}"
    "{%- elif message['role'] == 'assistant' -%}<|assistant|>"
    "{%- generation -%}{{ message['content'] }}{{ eos_token }}{%- endgeneration -%}"
    "{%- else -%}{{ raise_exception('unknown role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


@dataclass
class DemoModelArgs:
    """Build parameters of the demo model; all of them are recorded in ``demo_model.json``."""

    seed: int = 1
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    # None: 4 x hidden_size, which keeps the default model near 0.17M parameters (hidden 64).
    intermediate_size: int | None = None
    # Bytes (256) + specials + ~340 merges: enough to make code keywords single tokens (shorter
    # sequences train faster) while every token is still seen often in a 66-problem corpus.
    vocab_size: int = 600
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 5e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    # Share of the training texts that carry the buggy variant. One half makes both variants
    # about equally likely at the point where they differ: samples mix, greedy is a coin flip.
    buggy_fraction: float = 0.5
    threads: int = 1
    progress: bool = True


def format_response(code: str) -> str:
    """The assistant answer the demo model is trained to give: one fenced Python block."""
    return f"```python\n{code.rstrip()}\n```"


def load_demo_problems(problems: Path) -> list[dict[str, Any]]:
    """Read the problems file; each record needs a prompt, a canonical and a buggy solution."""
    records = []
    for lineno, record in read_jsonl(problems):
        where = f"{problems}:{lineno}"
        for field in ("task_id", "prompt", "canonical_solution"):
            if not isinstance(record.get(field), str):
                raise InputError(f"{where}: field '{field}' must be a string")
        buggy = (record.get("meta") or {}).get("buggy_solution")
        if not isinstance(buggy, str):
            raise InputError(f"{where}: field 'meta.buggy_solution' must be a string")
        records.append(record)
    if not records:
        raise InputError(f"{problems}: no problems")
    return records


def training_conversations(
    records: Sequence[dict[str, Any]],
) -> list[tuple[list[dict[str, str]], bool]]:
    """``(messages, is_buggy)`` for every problem and both of its variants."""
    out = []
    for record in records:
        for code, buggy in (
            (record["canonical_solution"], False),
            (record["meta"]["buggy_solution"], True),
        ):
            messages = [
                {"role": "user", "content": record["prompt"]},
                {"role": "assistant", "content": format_response(code)},
            ]
            out.append((messages, buggy))
    return out


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for ``transformers``.

    Byte-level, so any string a model may be shown later (a benchmark prompt, a traceback)
    still encodes, only in more tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [BOS, EOS, PAD, *ROLE_TOKENS.values()]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=list(ROLE_TOKENS.values()),
        # Decoder-only: batched generation needs the padding on the left.
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _encode_examples(tokenizer, conversations) -> list[tuple[list[int], int, bool]]:
    """``(input_ids, prompt_length, is_buggy)``; the loss covers only the answer tokens."""
    examples = []
    for messages, buggy in conversations:
        prompt_ids = tokenizer.apply_chat_template(
            messages[:1], add_generation_prompt=True, tokenize=False
        )
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if not full.startswith(prompt_ids):
            raise AssertionError("chat template: prompt is not a prefix of prompt + answer")
        p_ids = tokenizer(prompt_ids, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if ids[: len(p_ids)] != p_ids:
            raise AssertionError("tokenizer: prompt tokens are not a prefix of prompt + answer")
        examples.append((ids, len(p_ids), buggy))
    return examples


def _batches(examples, args: DemoModelArgs, rng: random.Random):
    """Endless stream of batches: each problem once per round, as its buggy variant with
    probability ``buggy_fraction``, in a fresh random order every round."""
    by_problem = [examples[i : i + 2] for i in range(0, len(examples), 2)]
    while True:
        order = list(range(len(by_problem)))
        rng.shuffle(order)
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = []
            for i in order[start : start + args.batch_size]:
                canonical, buggy = by_problem[i]
                batch.append(buggy if rng.random() < args.buggy_fraction else canonical)
            yield batch


def _collate(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, (ids, prompt_len, _) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
    return input_ids, attention, labels


def build_demo_model(
    problems: Path,
    out_dir: Path,
    *,
    seed: int = 1,
    hidden_size: int = 64,
    num_layers: int = 2,
    steps: int = 300,
    threads: int = 1,
    **overrides: Any,
) -> None:
    """Train the demo tokenizer and model on ``problems`` and save both to ``out_dir``.

    ``overrides`` sets the other :class:`DemoModelArgs` fields. The directory appears only when
    complete (built beside it, then renamed), and a build is deterministic given the arguments.
    """
    args = DemoModelArgs(
        seed=seed,
        hidden_size=hidden_size,
        num_layers=num_layers,
        steps=steps,
        threads=threads,
        **overrides,
    )
    problems, out_dir = Path(problems), Path(out_dir)
    records = load_demo_problems(problems)

    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    # More threads than free cores makes torch far slower, not faster (17x measured on a loaded
    # 2-core machine), so the caller chooses and the default is one.
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.monotonic()

    conversations = training_conversations(records)
    corpus = []
    for messages, _ in conversations:
        corpus.extend(m["content"] for m in messages)
    tokenizer = train_tokenizer(corpus, args.vocab_size)
    examples = _encode_examples(tokenizer, conversations)
    longest = max(len(ids) for ids, _, _ in examples)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size or 4 * args.hidden_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_heads,
        # Room for the longest training text plus a long, rambling sample.
        max_position_embeddings=max(512, 2 * longest),
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.train()

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay
    )

    def lr_factor(step: int) -> float:
        if step < args.warmup_steps:
            return (step + 1) / args.warmup_steps
        progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    batches = _batches(examples, args, rng)
    bar = tqdm(range(args.steps), desc="demo model", disable=not args.progress, leave=False)
    loss_value = float("nan")
    for _ in bar:
        input_ids, attention, labels = _collate(next(batches), tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    bar.close()
    model.eval()

    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=2 * longest,
    )
    params = sum(p.numel() for p in model.parameters())
    info = {
        "kind": "codedpo demo model",
        "args": dataclasses.asdict(args),
        "problems": str(problems),
        "problems_sha256": sha256_file(problems),
        "num_problems": len(records),
        "num_parameters": params,
        "vocab_size": len(tokenizer),
        "final_loss": loss_value,
        "build_seconds": round(time.monotonic() - started, 2),
    }
    _save_atomically(out_dir, model, tokenizer, info)


def _save_atomically(out_dir: Path, model, tokenizer, info: dict[str, Any]) -> None:
    """Write the model directory beside ``out_dir`` and rename it into place when complete."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    # mkdtemp makes the directory private (0700); the model is a normal output, so give it the
    # permissions a plain mkdir would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "demo_model.json", info)
        if out_dir.exists():
            # A rename cannot replace a non-empty directory: move the old one aside first.
            old = Path(
                tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent)
            )
            os.replace(out_dir, old / "model")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the tiny demo policy model from the demo problems (CPU, seconds)."
    )
    parser.add_argument("--problems", type=Path, required=True, help="demo problems JSONL")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    defaults = DemoModelArgs()
    for field in dataclasses.fields(DemoModelArgs):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
            continue
        kind = {"int": int, "float": float, "int | None": int}.get(str(field.type), str)
        parser.add_argument(flag, type=kind, default=default, help=f"default: {default}")
    ns = vars(parser.parse_args(argv))
    problems, out = ns.pop("problems"), ns.pop("out")
    try:
        build_demo_model(problems, out, **ns)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = json.loads((out / "demo_model.json").read_text(encoding="utf-8"))
    print(
        f"wrote {out}: {info['num_parameters']} parameters, final loss {info['final_loss']:.3f}, "
        f"{info['build_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
