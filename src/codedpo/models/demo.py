"""Build a demo policy: a tiny model shaped like one of the paper's models, trained from scratch.

The default workflow must run end to end without the Hugging Face Hub, so it builds its policies
from the embedded demo problems. Each imitates one paper model
(:mod:`codedpo.models.demo_families`): its architecture family, chat template, special tokens and
stop token, with a tokenizer trained here (the default) or read from a directory or the Hub. The
model is pretrained on every demo problem (both splits) rendered with that chat template, each
problem seen with its canonical solution *and* its ``meta.buggy_solution``, the answer ending with
the template's end-of-turn token. Sampling such a model at temperature ~0.8 gives a mix of passing
and failing programs, which is what the preference-pair stage needs; greedy decoding picks one of
the two variants per problem, so greedy pass@1 starts near one half and has room to move. Because
every buggy variant comes from one of a few shared bug families, a preference DPO learns on the
train split transfers to the eval split.

The saved directory loads like a hub model (``AutoModelForCausalLM.from_pretrained(out)``,
``AutoTokenizer.from_pretrained(out)``) with the hub model's ``config.json`` /
``generation_config.json`` stop-token layout, so sampling, training and evaluation treat it
exactly like a real code model. A demo policy is not that model: it carries no hub id, so the
tables put none of the paper's numbers beside it.

    codedpo build-demo-model --problems src/codedpo/data/demo/problems.jsonl \\
        --out results/models/demo-deepseek-coder --family deepseek-coder --seed 2 --steps 600
    # the real tokenizer files instead of a locally trained tokenizer:
    codedpo build-demo-model --problems src/codedpo/data/demo/problems.jsonl \\
        --out results/models/tiny-codeqwen --family codeqwen \\
        --tokenizer ../shared/models/Qwen__CodeQwen1.5-7B-Chat --tokenizer-class LlamaTokenizer
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
from codedpo.verbs import command_parser


@dataclass
class DemoModelArgs:
    """Build parameters of the demo model; all of them are recorded in ``demo_model.json``."""

    # Which paper model the policy imitates (codedpo.models.demo_families.FAMILIES).
    family: str = "deepseek-coder"
    # None: train a BPE tokenizer on the demo corpus; else a tokenizer directory or a Hub id.
    tokenizer: str | None = None
    # transformers class to read `tokenizer` with (None: AutoTokenizer); CodeQwen1.5's files
    # without tokenizer.json need LlamaTokenizer.
    tokenizer_class: str | None = None
    # Pretrain on a subset only: the problems of this split (None: every problem), and of those a
    # random `pretrain_max_problems` drawn with `pretrain_seed` exactly as `codedpo prepare
    # --max-problems --seed` draws them. configs/rehearsal.yaml pretrains its policies on the
    # few demo problems it trains on (a real 32k-92k vocabulary makes every step costly).
    pretrain_split: str | None = None
    pretrain_max_problems: int | None = None
    pretrain_seed: int = 0
    seed: int = 1
    hidden_size: int = 64
    num_layers: int = 2
    # Head size = hidden_size / num_heads: 32 at the defaults, the smallest that vLLM's CPU
    # attention serves (32, 64, 80, ... in vllm/v1/attention/backends/cpu_attn.py), so the
    # vLLM backend's tests run on the demo policies. The Qwen2 family gets num_heads // 4 KV heads.
    num_heads: int = 2
    # None: 4 x hidden_size, which keeps the default model near 0.17M parameters (hidden 64).
    intermediate_size: int | None = None
    # Local tokenizer only. Bytes (256) + specials + ~340 merges: enough to make code keywords
    # and the template's fixed text single tokens (shorter sequences train faster) while every
    # token is still seen often in the demo corpus.
    vocab_size: int = 600
    # 600 x 16: each of the 217 demo problems is seen about 44 times (half as its buggy variant);
    # 300 left the policies writing mostly syntax errors (measured: 12% of the on-policy samples
    # passed, against 44-60% at 600).
    steps: int = 600
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


def make_tokenizer(args: DemoModelArgs, conversations) -> Any:
    """The policy's tokenizer: trained on the rendered demo corpus, or read from its source."""
    from codedpo.models import demo_families as fam

    family = fam.get_family(args.family)
    if args.tokenizer:
        return fam.load_tokenizer(args.tokenizer, family, args.tokenizer_class)
    if args.tokenizer_class:
        raise InputError("tokenizer_class needs a tokenizer (a directory or a Hub id)")
    # The template's fixed text (DeepSeek-Coder's system prompt, "[INST]", role names) is part
    # of every sequence: render the corpus with a bytes-only tokenizer first, then learn the
    # merges on it.
    bootstrap = fam.train_local_tokenizer(family, [], vocab_size=0)
    texts = []
    for messages, _ in conversations:
        rendered = bootstrap.apply_chat_template(messages, tokenize=False)
        texts.append(fam.corpus_text(family, rendered))
    return fam.train_local_tokenizer(family, texts, args.vocab_size)


def _encode_examples(tokenizer, conversations) -> list[tuple[list[int], int, bool]]:
    """``(input_ids, prompt_length, is_buggy)``: the generation prompt, then the answer as the
    chat template renders it up to and including its end-of-turn token (the template's text
    after that token is never generated, so it is not learnt). The loss covers the answer."""
    from codedpo.models import chat

    examples = []
    for messages, buggy in conversations:
        prompt = chat.prompt_ids(tokenizer, messages[:1])
        answer = chat.template_turn_ids(tokenizer, messages[:1], messages[1]["content"])
        examples.append((prompt + answer, len(prompt), buggy))
    return examples


def _batches(examples, args: DemoModelArgs, rng: random.Random):
    """Endless stream of batches: each problem once per round, as its buggy variant with
    probability ``buggy_fraction``, in a fresh random order every round."""
    by_problem = [examples[i : i + 2] for i in range(0, len(examples), 2)]
    while True:
        order = list(range(len(by_problem)))
        rng.shuffle(order)
        while len(order) < args.batch_size:
            # Fewer problems than a batch (a pretraining subset): each batch holds several
            # shuffled rounds.
            more = list(range(len(by_problem)))
            rng.shuffle(more)
            order += more
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
    steps: int = 600,
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
    if args.pretrain_split or args.pretrain_max_problems:
        from codedpo.problems.prepare import prepare

        kept = prepare(
            problems,
            "problems",
            args.pretrain_split,
            max_problems=args.pretrain_max_problems,
            seed=args.pretrain_seed,
        )
        ids = {r["task_id"] for r in kept}
        records = [r for r in records if r["task_id"] in ids]

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    from codedpo.models import demo_families as fam

    family = fam.get_family(args.family)
    # More threads than free cores makes torch far slower, not faster (17x measured on a loaded
    # 2-core machine), so the caller chooses and the default is one.
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.monotonic()

    conversations = training_conversations(records)
    tokenizer = make_tokenizer(args, conversations)
    examples = _encode_examples(tokenizer, conversations)
    longest = max(len(ids) for ids, _, _ in examples)
    # CodeLlama's tokenizer has no pad token: pad with eos (masked out of the loss).
    pad_id = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id

    config = fam.model_config(
        family,
        tokenizer,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size or 4 * args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        # Room for the longest training text plus a long, rambling sample.
        max_position_embeddings=max(512, 2 * longest),
    )
    model = AutoModelForCausalLM.from_config(config)
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
        input_ids, attention, labels = _collate(next(batches), pad_id)
        loss = _answer_loss(model, input_ids, attention, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    bar.close()
    model.eval()

    model.generation_config = fam.generation_config(family, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    info = {
        "kind": "codedpo demo model",
        # The hub model whose architecture family, template and stop tokens this one imitates.
        # It is not that model: the tables give it none of the paper's numbers.
        "imitates": family.imitates,
        "model_type": family.model_type,
        "args": dataclasses.asdict(args),
        "problems": str(problems),
        "problems_sha256": sha256_file(problems),
        "num_problems": len(records),
        "pretrain_task_ids": sorted(r["task_id"] for r in records),
        "num_parameters": params,
        "vocab_size": len(tokenizer),
        "final_loss": loss_value,
        "build_seconds": round(time.monotonic() - started, 2),
    }
    _save_atomically(out_dir, model, tokenizer, info)


def _answer_loss(model, input_ids, attention, labels):
    """Next-token cross-entropy on the answer tokens, computing logits only there: with a
    real 32k-92k vocabulary the output layer over every prompt position would cost most of
    the step."""
    import torch.nn.functional as F

    hidden = model.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


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
    parser = command_parser(
        "build-demo-model", "Build a tiny demo policy model from the demo problems (CPU, seconds)."
    )
    parser.add_argument("--problems", type=Path, required=True, help="demo problems JSONL")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    defaults = DemoModelArgs()
    for field in dataclasses.fields(DemoModelArgs):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f"DemoModelArgs.{field.name}")  # fmt: skip
            continue
        kind = {"int": int, "float": float, "int | None": int}.get(str(field.type), str)
        parser.add_argument(flag, type=kind, default=default, help=f"DemoModelArgs.{field.name}")
    parser.add_argument("--list-families", action="store_true", help="print the families")
    ns = vars(parser.parse_args(argv))
    problems, out = ns.pop("problems"), ns.pop("out")
    if ns.pop("list_families"):
        from codedpo.models.demo_families import FAMILIES

        for name, family in FAMILIES.items():
            print(f"{name}: imitates {family.imitates} ({family.model_type})")
        return 0
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
