"""Train a policy on execution-verified preferences: DPO, or RFT (SFT on the chosen responses);
or online with execution rewards: GRPO (:mod:`codedpo.training.grpo`).

The losses are TRL's (`DPOTrainer`, `SFTTrainer`, `GRPOTrainer`); this script only reads our
files, fills in the paper's defaults from a recipe and writes the checkpoint atomically: training
runs in ``OUT.tmp/`` and the directory is renamed to ``OUT/`` only after the model, the tokenizer
and ``train_summary.json`` are saved, so an interrupted job never leaves a checkpoint that looks
done. A job killed after TRL saved a checkpoint (``save_steps``) resumes from the last complete one.

The examples reach TRL already tokenized (:func:`tokenize_records`, through
:mod:`codedpo.models.chat`): the prompt exactly as sampling fed it to the policy, the response as
the policy generated it, and one end-of-turn token after it. TRL's own conversational tokenization
renders the response through the chat template, which for the paper's models adds tokens the policy
never produced (DeepSeek-Coder: a newline before and after ``<|EOT|>``; ChatML: a newline after
``<|im_end|>``). SFT takes tokenized data through its public path (``input_ids`` +
``completion_mask``); DPO in TRL 1.16 always tokenizes, so :func:`_dpo_trainer_class` skips that
step for tokenized data (TRL is pinned to 1.16 for it; tests/test_train.py checks the trainer's
dataset token by token).

```bash
# DPO, one process on CPU (the tests do this with a tiny model)
accelerate launch --config_file configs/accelerate/cpu.yaml -m codedpo train \\
    --config configs/recipes/dpo.yaml \\
    --model_name_or_path deepseek-ai/deepseek-coder-6.7b-instruct \\
    --train_file results/pairs/base.jsonl --output_dir results/models/dpo-base

# RFT on 8 GPUs with DeepSpeed ZeRO-3
accelerate launch --config_file configs/accelerate/zero3.yaml --num_processes 8 -m codedpo train \\
    --config configs/recipes/rft.yaml \\
    --model_name_or_path deepseek-ai/deepseek-coder-6.7b-instruct \\
    --train_file results/rft/base.jsonl --output_dir results/models/rft-base
```

Any field of ``ScriptArguments`` or of the method's TRL config (``DPOConfig``, ``SFTConfig``,
``GRPOConfig``) can be set in the recipe or overridden on the command line (``--beta 0.05``,
``--learning_rate 1e-6``). The recipe's ``method`` picks the trainer; ``--method`` on the command
line overrides it. The recipe is checked before anything loads (unknown keys, values of the wrong
kind, DPO loss names TRL does not have, ``loss_weights`` of the wrong length): the error names the
recipe file and the field.

Loss variants are TRL's (``loss_type``: ``sigmoid`` = the paper, ``ipo``, ``robust``,
``apo_zero``, ``[sigmoid, sft]`` with ``loss_weights`` = DPO + NLL, ...: configs/recipes/dpo-*).
LoRA is PEFT's: a recipe's ``peft`` mapping holds ``peft.LoraConfig`` fields (``r``,
``lora_alpha``, ``lora_dropout``, ``target_modules`` ...) and ``merge``: true saves the adapter
merged into a full model, false (the default) saves the adapter directory (plus tokenizer,
generation config and summary) that later stages load through
:func:`codedpo.models.load.load_causal_lm`. A starting model that is an adapter directory (the next
iterative round) is loaded merged, and a new adapter, if any, is trained on top of it and records
it as its base.

``--ref_model_name_or_path`` sets DPO's reference model; by default it is the starting model
(TRL's default: a frozen copy, or with LoRA the model with the adapter switched off).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from codedpo.io import InputError, read_json, read_jsonl, sha256_file, write_json
from codedpo.training import fields as train_fields
from codedpo.training import grpo, resume, tracking
from codedpo.training.fields import METHODS, ScriptArguments

# TRL pings the Hub with usage telemetry from rank 0; a reproducible offline pipeline opts out.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

def _recipe(argv: list[str]) -> tuple[str | None, dict]:
    """The recipe ``--config`` names (path, mapping), or ``(None, {})``."""
    import yaml

    if "--config" not in argv:
        return None, {}
    k = argv.index("--config")
    if k + 1 >= len(argv):
        raise InputError("--config needs a recipe file")
    path = argv[k + 1]
    try:
        with open(path, encoding="utf-8") as fh:
            recipe = yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the recipe ({exc})") from None
    if not isinstance(recipe, dict):
        raise InputError(f"{path}: a recipe is a mapping of field: value")
    return path, recipe


def _peek_method(argv: list[str]) -> str:
    """The method decides which config dataclass parses the rest, so read it first."""
    method = None
    for k, arg in enumerate(argv):
        if arg == "--method" and k + 1 < len(argv):
            method = argv[k + 1]
        elif arg.startswith("--method="):
            method = arg.split("=", 1)[1]
    if method is None:
        method = _recipe(argv)[1].get("method")
    method = method or "dpo"
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def make_parser(method: str):
    """TRL's parser over our arguments and the method's TRL config, with device-aware defaults.

    TRL defaults ``bf16`` to on, which raises on a machine without a GPU; there the defaults become
    fp32 on ``use_cpu`` (which also lets ``accelerate launch`` run several CPU ranks over gloo).
    A recipe or a flag still overrides them.
    """
    import torch
    import trl
    from trl import TrlParser

    config_class = getattr(trl, train_fields.CONFIGS[method])
    parser = TrlParser((ScriptArguments, config_class), prog="codedpo train")
    if not torch.cuda.is_available():
        parser.set_defaults(use_cpu=True, bf16=False)
    return parser


def _messages(value, where: str, name: str) -> list[dict]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    ):
        raise InputError(f"{where}: field '{name}' must be a non-empty list of chat messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def load_train_records(path: str | os.PathLike, method: str) -> list[dict]:
    """Read pairs (dpo) or RFT examples (rft) in TRL's conversational format, checked.

    Only the columns TRL consumes are kept; our bookkeeping fields (ids, statuses) stay in the file.
    grpo: the problems (:func:`codedpo.training.grpo.load_prompts`).
    """
    if method == "grpo":
        return grpo.load_prompts(path)
    columns = ("prompt", "chosen", "rejected") if method == "dpo" else ("prompt", "completion")
    records = []
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        for name in columns:
            if name not in record:
                raise InputError(f"{where}: missing field '{name}'")
        kept = {name: _messages(record[name], where, name) for name in columns}
        for name in columns[1:]:  # the response: one assistant turn, as sampled
            if len(kept[name]) != 1 or kept[name][0]["role"] != "assistant":
                raise InputError(f"{where}: field '{name}' must be one assistant message")
        records.append(kept)
    if not records:
        if method == "dpo":
            raise InputError(
                f"no preference pairs in {path}: no problem had both a passing and a failing sample"
            )
        raise InputError(f"no RFT examples in {path}: no problem had a passing sample")
    return records


def tokenize_records(tokenizer, records: list[dict], method: str) -> list[dict]:
    """TRL's tokenized columns for each record, as the policy saw and produced the sequence.

    dpo: ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (the columns DPOTrainer's collator
    reads); rft: ``input_ids`` and ``completion_mask`` (SFTTrainer's tokenized form; the loss
    covers the completion when ``completion_only_loss``).
    """
    from codedpo.models import chat

    out = []
    for record in records:
        prompt = chat.prompt_ids(tokenizer, record["prompt"])

        def response(name: str, record: dict = record) -> list[int]:
            return chat.completion_ids(tokenizer, record["prompt"], record[name][0]["content"])

        if method == "dpo":
            out.append(
                {
                    "prompt_ids": prompt,
                    "chosen_ids": response("chosen"),
                    "rejected_ids": response("rejected"),
                }
            )
        else:
            completion = response("completion")
            out.append(
                {
                    "input_ids": prompt + completion,
                    "completion_mask": [0] * len(prompt) + [1] * len(completion),
                }
            )
    return out


def _dpo_trainer_class():
    """TRL's DPOTrainer, taking tokenized examples (``prompt_ids``...) as they are.

    TRL 1.16's ``DPOTrainer._prepare_dataset`` always tokenizes the text columns; for data that
    is already tokenized this keeps only its last step (dropping examples whose prompt alone
    fills ``max_length``). The loss and everything else are TRL's.
    """
    import trl

    class TokenizedDPOTrainer(trl.DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" not in dataset.column_names:
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if args.max_length is not None and args.truncation_mode == "keep_start":
                dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < args.max_length)
            return dataset

    return TokenizedDPOTrainer


def load_tokenizer(model_name_or_path: str):
    """The policy's tokenizer, as sampling loads it (pad falls back to eos)."""
    from codedpo.models.chat import load_tokenizer as load

    tokenizer = load(model_name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def lora_config(script_args: ScriptArguments):
    """PEFT's ``LoraConfig`` from the recipe's ``peft`` mapping (without ``merge``), or None."""
    if script_args.peft is None:
        return None
    from peft import LoraConfig

    settings = {k: v for k, v in script_args.peft.items() if k != "merge"}
    try:
        return LoraConfig(task_type="CAUSAL_LM", **settings)
    except (TypeError, ValueError) as exc:
        raise InputError(f"peft: {exc}") from None


def _model_dtype(training_args):
    """The dtype TRL would load a model id with (``model_init_kwargs.dtype``, else fp32)."""
    import torch

    dtype = (training_args.model_init_kwargs or {}).get("dtype", "float32")
    if isinstance(dtype, str) and dtype != "auto":
        return getattr(torch, dtype)
    return dtype


def reference_path(script_args: ScriptArguments) -> str:
    """The DPO reference: ``--ref_model_name_or_path``, else the starting model."""
    return script_args.ref_model_name_or_path or script_args.model_name_or_path


def build_trainer(script_args: ScriptArguments, training_args, records: list[dict]):
    """The TRL trainer for ``records`` (read by :func:`load_train_records`), not yet trained.

    A model id goes to TRL as it is (TRL loads it, and the reference from it); a starting model
    that is an adapter directory is loaded merged (:func:`codedpo.models.load.load_causal_lm`), and
    so is a reference other than the starting model.
    """
    import datasets
    import trl

    from codedpo.models.load import is_adapter, load_causal_lm

    tokenizer = load_tokenizer(script_args.model_name_or_path)
    start = script_args.model_name_or_path
    dtype = _model_dtype(training_args)
    model = load_causal_lm(start, dtype=dtype) if is_adapter(start) else start
    kwargs = {}
    peft_config = lora_config(script_args)
    if peft_config is not None:
        kwargs["peft_config"] = peft_config
    if script_args.method == "grpo":
        return grpo.build_trainer(script_args, training_args, records, model=model,
                                  tokenizer=tokenizer, **kwargs)  # fmt: skip
    dataset = datasets.Dataset.from_list(tokenize_records(tokenizer, records, script_args.method))
    trainer_cls = _dpo_trainer_class() if script_args.method == "dpo" else trl.SFTTrainer
    if script_args.method == "dpo":
        ref = reference_path(script_args)
        # TRL's default reference is the starting model: a copy loaded from the model's config
        # path (which for a merged adapter is not a model directory), or with LoRA the model
        # with its adapter off. Any other reference, and a merged start without LoRA, is loaded.
        if ref != start or (is_adapter(start) and peft_config is None):
            kwargs["ref_model"] = load_causal_lm(ref, dtype=dtype)
    return trainer_cls(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        **kwargs,
    )


def _finish_adapter(trainer, script_args: ScriptArguments, out_dir: Path) -> None:
    """After ``save_model`` wrote a PEFT adapter to ``out_dir``: record the starting model as its
    base and save the generation config (stop tokens) beside it; with ``merge``, replace the
    adapter by the full merged model."""
    from codedpo.models.load import ADAPTER_CONFIG, load_causal_lm

    model = trainer.accelerator.unwrap_model(trainer.model)
    config = read_json(out_dir / ADAPTER_CONFIG)
    config["base_model_name_or_path"] = script_args.model_name_or_path
    write_json(out_dir / ADAPTER_CONFIG, config)
    if script_args.peft.get("merge"):
        merged = load_causal_lm(str(out_dir), dtype=model.dtype)
        for name in (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin"):
            (out_dir / name).unlink(missing_ok=True)
        merged.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)


def _set_gradient_accumulation(script_args: ScriptArguments, training_args) -> None:
    if script_args.effective_batch_size is None:
        return
    per_step = training_args.per_device_train_batch_size * training_args.world_size
    steps, rest = divmod(script_args.effective_batch_size, per_step)
    if rest or steps < 1:
        raise InputError(
            f"effective_batch_size {script_args.effective_batch_size} is not a multiple of "
            f"per_device_train_batch_size {training_args.per_device_train_batch_size} x "
            f"{training_args.world_size} processes"
        )
    training_args.gradient_accumulation_steps = steps


def train(script_args: ScriptArguments, training_args) -> dict:
    """Train with TRL and publish ``output_dir`` atomically; returns the summary it writes."""
    import torch
    import transformers
    import trl

    started = time.time()
    torch.set_num_threads(script_args.threads)
    if script_args.method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {script_args.method!r}")
    if not script_args.model_name_or_path:
        raise InputError("--model_name_or_path is required")
    if not script_args.train_file:
        raise InputError("--train_file is required")
    from codedpo.models.load import check_model_path

    check_model_path(script_args.model_name_or_path)
    if script_args.ref_model_name_or_path:
        check_model_path(script_args.ref_model_name_or_path)
    records = load_train_records(script_args.train_file, script_args.method)
    accumulation = training_args.gradient_accumulation_steps
    _set_gradient_accumulation(script_args, training_args)
    budget = None
    if script_args.method == "grpo":
        grpo.follow_accumulation(training_args, accumulation, len(records))
        budget = grpo.apply_budget(script_args, training_args, len(records))

    final_dir = Path(training_args.output_dir)
    tmp_dir = final_dir.with_name(final_dir.name + ".tmp")
    training_args.output_dir = str(tmp_dir)
    settings = resume.run_settings(script_args, training_args)
    checkpoint = resume.prepare(tmp_dir, settings, training_args.distributed_state)
    tracking.apply(training_args, final_dir)

    trainer = build_trainer(script_args, training_args, records)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(tmp_dir))  # every rank: ZeRO-3 gathers the shards here
    if script_args.peft is not None and trainer.accelerator.is_main_process:
        _finish_adapter(trainer, script_args, tmp_dir)

    summary = {
        "method": script_args.method,
        "model": script_args.model_name_or_path,
        "train_file": script_args.train_file,
        "train_file_sha256": sha256_file(script_args.train_file),
        "ref_model": reference_path(script_args) if script_args.method == "dpo" else None,
        "peft": script_args.peft,
        "adapter": script_args.peft is not None and not script_args.peft.get("merge"),
        "num_examples": len(records),
        "train_loss": result.training_loss,
        "global_step": result.global_step,
        "resumed_from": Path(checkpoint).name if checkpoint else None,
        "num_processes": training_args.world_size,
        # CUDA devices the run trained on (GPU hours = wall time x gpus); 0 on the CPU
        "gpus": training_args.world_size if torch.cuda.is_available() else 0,
        "distributed_type": str(trainer.accelerator.distributed_type.value),
        "zero_stage": getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", None),
        "mixed_precision": trainer.accelerator.mixed_precision,
        "wall_time_s": round(time.time() - started, 3),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
        "script_args": asdict(script_args),
        "training_args": json.loads(training_args.to_json_string()),
        "log_history": trainer.state.log_history,
    }
    summary["training_args"]["output_dir"] = str(final_dir)
    if script_args.method == "grpo":
        summary["budget"] = {**(trainer.budget or {}), "budget_responses": budget}
        summary["hacks"] = trainer.hacks
    if trainer.accelerator.is_main_process:
        resume.clear(tmp_dir)
        write_json(tmp_dir / "train_summary.json", summary)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(tmp_dir, final_dir)
    trainer.accelerator.wait_for_everyone()
    if hasattr(trainer, "end"):  # transformers >= 5.18: finish trackers, destroy the process group
        trainer.end()
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        method = _peek_method(argv)
        recipe_path, recipe = _recipe(argv)
        if recipe_path is not None:
            train_fields.check_recipe(recipe_path, recipe, method)
        try:
            script_args, training_args = make_parser(method).parse_args_and_config(argv)
        except ValueError as exc:  # TRL's parser and config checks (a command-line value)
            raise InputError(str(exc)) from None
        if script_args.method != method:  # --method=... spelled a way _peek_method missed
            raise InputError(f"method {script_args.method!r} does not match the parsed {method!r}")
        train_fields.check_arguments(script_args, training_args)
        summary = train(script_args, training_args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Every rank reports, so a launcher that silently started one process shows up in the log.
    rank = os.environ.get("RANK", "0")
    print(
        f"rank {rank}/{summary['num_processes']}: trained {summary['method']} on "
        f"{summary['num_examples']} examples: "
        f"train_loss {summary['train_loss']:.4f} in {summary['wall_time_s']:.0f}s",
        file=sys.stderr,
    )
    return 0
