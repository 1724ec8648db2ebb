"""DPO and RFT training of a tiny local Llama through TRL, launched as the workflow launches it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import kill_after_checkpoint, tiny_model_dir  # noqa: E402

from codedpo.io import InputError  # noqa: E402
from codedpo.training.train import (  # noqa: E402
    _peek_method,
    _set_gradient_accumulation,
    load_train_records,
    main,
)

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")
# Small-model overrides of the paper recipe: the tiny model learns nothing at lr 5e-6 in a few
# steps, and activation checkpointing only slows a CPU run down.
TINY = ["--activation_checkpointing", "false", "--learning_rate", "1e-3", "--max_length", "128"]
TINY += ["--effective_batch_size", "4", "--per_device_train_batch_size", "2"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    records = [
        {
            "prompt": user(f"Write `f{k}(x)` returning x + {k}."),
            "chosen": assistant(f"```python\ndef f{k}(x):\n    return x + {k}\n```"),
            "rejected": assistant(f"```python\ndef f{k}(x):\n    return x - {k}\n```"),
            "task_id": f"demo/p{k}",
            "chosen_id": f"demo/p{k}/0",
            "rejected_id": f"demo/p{k}/1",
            "rejected_status": "failed",
        }
        for k in range(8)
    ]
    return write_jsonl(tmp_path / "pairs.jsonl", records)


@pytest.fixture
def rft_file(tmp_path) -> Path:
    records = [
        {
            "prompt": user(f"Write `f{k}(x)` returning x + {k}."),
            "completion": assistant(f"```python\ndef f{k}(x):\n    return x + {k}\n```"),
            "task_id": f"demo/p{k}",
            "sample_id": f"demo/p{k}/0",
        }
        for k in range(8)
    ]
    return write_jsonl(tmp_path / "rft.jsonl", records)


def launch(accelerate_config: str, args: list[str], extra: list[str] = ()):
    cmd = [str(ACCELERATE), "launch", "--config_file", str(ROOT / accelerate_config), *extra]
    cmd += ["-m", "codedpo", "train", *args]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def state_dict(path: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def assert_trained_checkpoint(out: Path, base: Path, method: str, num_examples: int) -> dict:
    from transformers import AutoTokenizer

    assert not out.with_name(out.name + ".tmp").exists()
    before, after = state_dict(base), state_dict(out)
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before), "training changed no weight"
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.apply_chat_template(user("x"), add_generation_prompt=True, tokenize=False)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["method"] == method
    assert summary["num_examples"] == num_examples
    assert summary["wall_time_s"] > 0
    assert summary["train_loss"] == pytest.approx(summary["log_history"][-1]["train_loss"])
    assert summary["training_args"]["output_dir"] == str(out)
    return summary


def test_dpo_through_accelerate_launch(model_dir, pairs_file, tmp_path):
    out = tmp_path / "dpo"
    args = ["--config", "configs/recipes/dpo.yaml", "--model_name_or_path", str(model_dir)]
    args += ["--train_file", str(pairs_file), "--output_dir", str(out), *TINY]
    proc = launch("configs/accelerate/cpu.yaml", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0/1: trained dpo on 8 examples" in proc.stderr
    summary = assert_trained_checkpoint(out, model_dir, "dpo", 8)
    ta = summary["training_args"]
    # The paper recipe arrives intact, with the CPU defaults in place of TRL's bf16.
    assert (ta["beta"], ta["lr_scheduler_type"], ta["warmup_steps"]) == (0.1, "cosine", 0.05)
    assert (ta["num_train_epochs"], ta["gradient_accumulation_steps"]) == (1, 2)
    assert (ta["bf16"], ta["use_cpu"], ta["report_to"]) == (False, True, [])
    assert summary["global_step"] == 2  # 8 pairs / 4 per step
    assert (summary["distributed_type"], summary["mixed_precision"]) == ("NO", "no")


def test_rft_through_accelerate_launch(model_dir, rft_file, tmp_path):
    out = tmp_path / "rft"
    args = ["--config", "configs/recipes/rft.yaml", "--model_name_or_path", str(model_dir)]
    args += ["--train_file", str(rft_file), "--output_dir", str(out), *TINY]
    proc = launch("configs/accelerate/cpu.yaml", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = assert_trained_checkpoint(out, model_dir, "rft", 8)
    assert summary["training_args"]["completion_only_loss"] is True


def test_dpo_loss_falls_and_margin_grows_over_epochs(model_dir, pairs_file, tmp_path):
    out = tmp_path / "dpo-epochs"
    args = ["--config", str(ROOT / "configs/recipes/dpo.yaml"), "--model_name_or_path"]
    args += [str(model_dir), "--train_file", str(pairs_file), "--output_dir", str(out), *TINY]
    args += ["--num_train_epochs", "10", "--learning_rate", "1e-2", "--seed", "3"]
    args += ["--precompute_ref_log_probs", "true"]
    assert main(args) == 0
    history = json.loads((out / "train_summary.json").read_text())["log_history"]
    steps = [h for h in history if "loss" in h]
    assert len(steps) == 20
    # At step 1 policy == reference, so the DPO loss is log 2 and the margin 0 (measured at
    # 10 epochs: loss 0.69 -> 0.22, margin 0 -> 1.4).
    assert steps[0]["loss"] == pytest.approx(0.6931, abs=1e-3)
    assert steps[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-4)
    losses = [h["loss"] for h in steps]
    margins = [h["rewards/margins"] for h in steps]
    assert sum(losses[-4:]) / 4 < 0.4 < sum(losses[:4]) / 4
    assert sum(margins[-4:]) / 4 > 0.8 > sum(margins[:4]) / 4
    assert steps[-1]["rewards/accuracies"] == 1.0


def test_empty_pairs_file_fails_clearly(model_dir, tmp_path, capsys):
    empty = tmp_path / "pairs.jsonl"
    empty.write_text("")
    out = tmp_path / "dpo"
    args = ["--config", str(ROOT / "configs/recipes/dpo.yaml"), "--model_name_or_path"]
    args += [str(model_dir), "--train_file", str(empty), "--output_dir", str(out)]
    assert main(args) == 2
    assert f"no preference pairs in {empty}" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("dpo.tmp").exists()
    with pytest.raises(InputError, match="no RFT examples"):
        load_train_records(empty, "rft")


def test_malformed_records_name_the_line(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": user("a"), "chosen": assistant("b"), "rejected": assistant("c")},
            {"prompt": user("a"), "chosen": "b", "rejected": assistant("c")},
        ],
    )
    with pytest.raises(InputError, match=r"pairs.jsonl:2: field 'chosen'"):
        load_train_records(path, "dpo")
    records = load_train_records(
        write_jsonl(
            path,
            [
                {
                    "task_id": "t",
                    "prompt": user("a"),
                    "chosen": assistant("b"),
                    "rejected": assistant("c"),
                }
            ],
        ),
        "dpo",
    )
    assert records == [{"prompt": user("a"), "chosen": assistant("b"), "rejected": assistant("c")}]


def test_method_comes_from_the_command_line_or_the_recipe():
    assert _peek_method(["--config", str(ROOT / "configs/recipes/rft.yaml")]) == "rft"
    assert (
        _peek_method(["--config", str(ROOT / "configs/recipes/rft.yaml"), "--method", "dpo"])
        == "dpo"
    )
    assert _peek_method(["--method=rft"]) == "rft"
    with pytest.raises(InputError, match="sft"):
        _peek_method(["--method", "sft"])


def test_effective_batch_size_sets_gradient_accumulation():
    script = SimpleNamespace(effective_batch_size=16)
    args = SimpleNamespace(
        per_device_train_batch_size=2, world_size=4, gradient_accumulation_steps=1
    )
    _set_gradient_accumulation(script, args)
    assert args.gradient_accumulation_steps == 2
    args.world_size = 3
    with pytest.raises(InputError, match="not a multiple"):
        _set_gradient_accumulation(script, args)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None or shutil.which("c++") is None,
    reason="needs deepspeed (DS_BUILD_OPS=0 pip install deepspeed) and a C++ compiler",
)
def test_dpo_with_deepspeed_zero2_on_two_cpu_ranks(model_dir, pairs_file, tmp_path):
    out = tmp_path / "dpo-zero2"
    args = ["--config", "configs/recipes/dpo.yaml", "--model_name_or_path", str(model_dir)]
    args += ["--train_file", str(pairs_file), "--output_dir", str(out), *TINY]
    args += ["--per_device_train_batch_size", "1", "--use_cpu", "true"]
    extra = ["--num_processes", "2", "--mixed_precision", "no"]
    proc = launch("configs/accelerate/zero2.yaml", args, extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0/2: trained dpo" in proc.stderr and "rank 1/2: trained dpo" in proc.stderr
    summary = assert_trained_checkpoint(out, model_dir, "dpo", 8)
    assert summary["num_processes"] == 2
    assert (summary["distributed_type"], summary["zero_stage"]) == ("DEEPSPEED", 2)
    # 4 pairs per step = 1 per device x 2 ranks x 2 accumulation steps: 2 steps over 8 pairs
    # (the first at learning rate 0: warmup starts from 0).
    assert summary["training_args"]["gradient_accumulation_steps"] == 2
    assert summary["global_step"] == 2


# --- TRL sees exactly the sequences the policy produced (issue 12, item 3) ---------------------

SHARED_MODELS = ROOT.parent / "shared" / "models"
# The paper's three models' real tokenizer files (../shared/models/README.md): CodeQwen1.5's
# copy has no tokenizer.json and must be read with LlamaTokenizer.
REAL_TOKENIZERS = {
    "deepseek-coder": ("deepseek-ai__deepseek-coder-6.7b-instruct", None),
    "codellama": ("codellama__CodeLlama-7b-Instruct-hf", None),
    "codeqwen": ("Qwen__CodeQwen1.5-7B-Chat", "LlamaTokenizer"),
}
QUESTION = [{"role": "user", "content": "Write a Python function `f(x)` that returns x plus 1."}]
ANSWERS = {
    "chosen": "```python\ndef f(x):\n    return x + 1\n```",
    "rejected": "Here it is:\n```python\ndef f(x):\n    return x - 1\n```\nDone.",
}


def _policy_dir(tmp_path_factory, family_name: str, source: str | None) -> Path:
    """A random tiny model of ``family_name`` saved with its tokenizer, the way the demo saves
    its policies (real tokenizer files when ``source`` is given, else a locally trained one)."""
    from transformers import AutoModelForCausalLM

    from codedpo.models import demo, demo_families

    family = demo_families.get_family(family_name)
    out = tmp_path_factory.mktemp(f"policy-{family_name}") / "model"
    if source is None:
        conversations = demo.training_conversations(demo.load_demo_problems(DEMO_PROBLEMS)[:8])
        args = demo.DemoModelArgs(family=family_name, vocab_size=400)
        tokenizer = demo.make_tokenizer(args, conversations)
    else:
        directory, cls = REAL_TOKENIZERS[family_name]
        tokenizer = demo_families.load_tokenizer(str(SHARED_MODELS / directory), family, cls)
    config = demo_families.model_config(
        family, tokenizer, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=4,
        max_position_embeddings=512,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = demo_families.generation_config(family, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


DEMO_PROBLEMS = ROOT / "src/codedpo/data/demo/problems.jsonl"
POLICIES = [(f, src) for f in REAL_TOKENIZERS for src in ("real", "local")]


@pytest.fixture(scope="module", params=POLICIES, ids=[f"{f}-{s}" for f, s in POLICIES])
def policy(request, tmp_path_factory):
    family, source = request.param
    source_dir = None if source == "local" else family
    return family, _policy_dir(tmp_path_factory, family, source_dir)


def _sampled(tokenizer) -> dict[str, tuple[list[int], str]]:
    """What a policy trained on its template generates for each answer (ids up to and
    including the end-of-turn token), and the text codedpo.sampling.sample stores for it."""
    from codedpo.models import chat

    out = {}
    for side, answer in ANSWERS.items():
        ids = chat.template_turn_ids(tokenizer, QUESTION, answer)
        # codedpo.sampling.sample decodes the new tokens alone, without special tokens.
        out[side] = (ids, tokenizer.batch_decode([ids], skip_special_tokens=True)[0])
    return out


def _generation_prompt(tokenizer) -> list[int]:
    """The prompt ids exactly as codedpo.sampling.sample computes them."""
    text = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _trainer(model_dir: Path, method: str, records: list[dict], tmp_path: Path):
    from codedpo.training.train import build_trainer, make_parser

    argv = ["--config", str(ROOT / f"configs/recipes/{method}.yaml"), "--model_name_or_path",
            str(model_dir), "--output_dir", str(tmp_path / method), *TINY,
            "--max_length", "1024"]  # fmt: skip
    script_args, training_args = make_parser(method).parse_args_and_config(argv)
    return build_trainer(script_args, training_args, records)


@pytest.mark.real_data
def test_trl_sees_the_sampled_sequences_token_for_token(policy, tmp_path):
    """A DPO pair and an RFT example, tokenized by the trainers our training builds: the prompt
    is exactly the generation prompt, each completion exactly the sampled ids (one end-of-turn
    token at the end, nothing after it), one BOS at most."""
    from codedpo.models import chat

    family, model_dir = policy
    tokenizer = chat.load_tokenizer(model_dir)  # as every stage loads a policy
    sampled = _sampled(tokenizer)
    prompt = _generation_prompt(tokenizer)
    assert chat.prompt_ids(tokenizer, QUESTION) == prompt
    eot = tokenizer.eos_token_id
    for ids, raw in sampled.values():
        assert ids[-1] == eot and ids.count(eot) == 1
        assert "<|" not in raw and "</s>" not in raw and "[INST]" not in raw

    pair = {"prompt": QUESTION, **{s: [{"role": "assistant", "content": raw}]
                                   for s, (_, raw) in sampled.items()}}  # fmt: skip
    dpo = _trainer(model_dir, "dpo", [pair], tmp_path).train_dataset[0]
    assert dpo["prompt_ids"] == prompt
    for side in ("chosen", "rejected"):
        assert dpo[f"{side}_ids"] == sampled[side][0], (family, side)
        assert chat.check_example(tokenizer, dpo["prompt_ids"], dpo[f"{side}_ids"], prompt) == []

    example = {"prompt": QUESTION, "completion": [{"role": "assistant",
                                                   "content": sampled["chosen"][1]}]}  # fmt: skip
    rft = _trainer(model_dir, "rft", [example], tmp_path).train_dataset[0]
    assert rft["input_ids"] == prompt + sampled["chosen"][0]
    # completion_only_loss: TRL turned our completion mask into labels on the completion only.
    assert rft["labels"] == [-100] * len(prompt) + sampled["chosen"][0]
    bos = tokenizer.bos_token_id
    assert bos is None or rft["input_ids"].count(bos) <= 1


@pytest.mark.real_data
def test_trl_alone_adds_tokens_after_the_stop_token(tmp_path_factory, tmp_path):
    """Why training tokenizes itself: TRL 1.16's own conversational tokenization renders the
    response through the template, which puts a newline after DeepSeek-Coder's <|EOT|> and
    ChatML's <|im_end|> (tokens the policy never generated). If TRL stops doing this, the
    override in codedpo.training.train can go."""
    import datasets
    import trl

    from codedpo.models import chat
    from codedpo.training.train import make_parser

    for family in ("deepseek-coder", "codeqwen"):
        model_dir = _policy_dir(tmp_path_factory, family, family)
        tokenizer = chat.load_tokenizer(model_dir)
        sampled = _sampled(tokenizer)
        pair = {"prompt": QUESTION, **{s: [{"role": "assistant", "content": raw}]
                                       for s, (_, raw) in sampled.items()}}  # fmt: skip
        argv = ["--config", str(ROOT / "configs/recipes/dpo.yaml"), "--output_dir",
                str(tmp_path / family), *TINY, "--max_length", "1024"]  # fmt: skip
        _, args = make_parser("dpo").parse_args_and_config(argv)
        trainer = trl.DPOTrainer(model=str(model_dir), args=args, processing_class=tokenizer,
                                 train_dataset=datasets.Dataset.from_list([pair]))  # fmt: skip
        row = trainer.train_dataset[0]
        prompt = _generation_prompt(tokenizer)
        assert row["prompt_ids"] == prompt  # the prompt itself is right
        problems = chat.check_example(tokenizer, row["prompt_ids"], row["chosen_ids"], prompt)
        assert any("does not end with the end-of-turn token" in p for p in problems), family
        assert row["chosen_ids"][-2] == tokenizer.eos_token_id  # ...<eot> "\n"


@pytest.mark.real_data
def test_codeqwen_tokenizer_loads_as_its_files_say(tmp_path_factory):
    """transformers 5 loads any qwen2 model's tokenizer as Qwen2Tokenizer, which garbles
    CodeQwen1.5's SentencePiece vocabulary; codedpo.models.chat.load_tokenizer (what sampling,
    training and the analysis use) loads the class the files declare and round-trips."""
    from transformers import AutoTokenizer, LlamaTokenizer

    from codedpo.models import chat

    model_dir = _policy_dir(tmp_path_factory, "codeqwen", "codeqwen")
    text = "```python\ndef f(x):\n    return x + 1\n```"
    auto = AutoTokenizer.from_pretrained(model_dir)
    assert type(auto).__name__ == "Qwen2Tokenizer"
    assert auto.decode(auto(text, add_special_tokens=False)["input_ids"]) != text
    ours = chat.load_tokenizer(model_dir)
    source = LlamaTokenizer.from_pretrained(SHARED_MODELS / REAL_TOKENIZERS["codeqwen"][0])
    ids = ours(text, add_special_tokens=False)["input_ids"]
    assert ids == source(text, add_special_tokens=False)["input_ids"]
    assert ours.decode(ids) == text
    prompt = ours.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")


# --- loss variants from TRL (issue 14, part 3) -------------------------------------------------

# Each recipe's TRL loss at the first step, where the policy is still the reference (every log
# ratio 0): sigmoid and robust -log sigmoid(0) = log 2, IPO (0 - 1/(2 beta))^2 = 25 at beta 0.1,
# APO-zero (1 - sigmoid(0)) + sigmoid(0) = 1; DPO+NLL log 2 + the chosen tokens' mean NLL.
FIRST_STEP_LOSS = {"dpo": 0.693147, "dpo-robust": 0.693147, "dpo-ipo": 25.0, "dpo-apo_zero": 1.0}
# All 8 pairs in each step, two steps (no warmup: the first step updates), so the loss of a step
# does not depend on the data order.
ONE_BATCH = ["--effective_batch_size", "8", "--per_device_train_batch_size", "8"]
ONE_BATCH += ["--num_train_epochs", "2", "--learning_rate", "1e-2", "--warmup_steps", "0"]


@pytest.fixture(scope="module")
def variant_losses(model_dir, tmp_path_factory) -> dict[str, list[float]]:
    """The per-step loss TRL logged for each loss-variant recipe, trained as the workflow would."""
    work = tmp_path_factory.mktemp("variants")
    pairs = write_jsonl(work / "pairs.jsonl", _pair_records())
    losses = {}
    for recipe in ("dpo", *FIRST_STEP_LOSS.keys() - {"dpo"}, "dpo-nll"):
        out = work / recipe
        args = ["--config", str(ROOT / f"configs/recipes/{recipe}.yaml"), "--model_name_or_path"]
        args += [str(model_dir), "--train_file", str(pairs), "--output_dir", str(out), *TINY]
        assert main([*args, *ONE_BATCH]) == 0, recipe
        summary = json.loads((out / "train_summary.json").read_text())
        assert summary["training_args"]["loss_type"] == _recipe(recipe)["loss_type"]
        losses[recipe] = [h["loss"] for h in summary["log_history"] if "loss" in h]
    return losses


def _recipe(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / f"configs/recipes/{name}.yaml").read_text())


def _pair_records() -> list[dict]:
    return [
        {
            "prompt": user(f"Write `f{k}(x)` returning x + {k}."),
            "chosen": assistant(f"```python\ndef f{k}(x):\n    return x + {k}\n```"),
            "rejected": assistant(f"```python\ndef f{k}(x):\n    return x - {k}\n```"),
        }
        for k in range(8)
    ]


def _chosen_token_nll(model_dir: Path) -> float:
    """Mean negative log-likelihood of the chosen responses' tokens under the untrained model,
    computed here (not by TRL): what TRL's ``sft`` loss is at the first step."""
    import torch

    from codedpo.models.load import load_causal_lm
    from codedpo.training.train import load_tokenizer, tokenize_records

    tokenizer = load_tokenizer(str(model_dir))
    model = load_causal_lm(str(model_dir)).eval()
    total, count = 0.0, 0
    for row in tokenize_records(tokenizer, _pair_records(), "dpo"):
        ids = torch.tensor([row["prompt_ids"] + row["chosen_ids"]])
        with torch.no_grad():
            logps = model(ids).logits[0, :-1].float().log_softmax(-1)
        targets = ids[0, 1:]
        token_logps = logps.gather(-1, targets[:, None])[:, 0][len(row["prompt_ids"]) - 1 :]
        total -= float(token_logps.sum())
        count += len(row["chosen_ids"])
    return total / count


def test_loss_variants_are_trls_losses(variant_losses, model_dir):
    """Each recipe trains with the TRL loss it names: at the first step every loss has the value
    its formula gives with the policy equal to the reference, and the second steps differ."""
    for recipe, expected in FIRST_STEP_LOSS.items():
        assert variant_losses[recipe][0] == pytest.approx(expected, abs=1e-4), recipe
    # robust = sigmoid at a zero margin, but its gradient is 1/(1 - 2 x 0.1) times larger, so the
    # second step (after one update) differs; the others differ from the first step on.
    assert abs(variant_losses["dpo-robust"][1] - variant_losses["dpo"][1]) > 1e-3
    # DPO+NLL (weights 1, 1): TRL logs the sum only; the NLL part is the chosen tokens' NLL.
    nll = variant_losses["dpo-nll"][0] - FIRST_STEP_LOSS["dpo"]
    assert nll == pytest.approx(_chosen_token_nll(model_dir), rel=1e-4)
    assert nll > 1.0  # a random 400-token model: about log 400 per token


def test_bad_loss_type_names_the_recipe_and_field(model_dir, pairs_file, tmp_path, capsys):
    recipe = tmp_path / "dpo-typo.yaml"
    recipe.write_text((ROOT / "configs/recipes/dpo.yaml").read_text().replace(
        "loss_type: [sigmoid]", "loss_type: [sigmoid, ipoo]"))  # fmt: skip
    out = tmp_path / "out"
    args = ["--config", str(recipe), "--model_name_or_path", str(model_dir)]
    args += ["--train_file", str(pairs_file), "--output_dir", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {recipe}: field 'loss_type': 'ipoo' is not one of sigmoid," in err
    assert "(did you mean 'ipo'?)" in err and "Traceback" not in err
    assert not out.exists()
    # On the command line, and loss_weights of the wrong length.
    args[1] = str(ROOT / "configs/recipes/dpo.yaml")
    assert main([*args, "--loss_type", "sigmod"]) == 2
    assert "error: --loss_type: 'sigmod' is not one of" in capsys.readouterr().err
    nll = ["--config", str(ROOT / "configs/recipes/dpo-nll.yaml"), *args[2:]]
    assert main([*nll, "--loss_weights", "1.0"]) == 2
    assert "`loss_weights` must have the same length as `loss_type`" in capsys.readouterr().err
    weights = tmp_path / "dpo-weights.yaml"
    weights.write_text(_recipe_text("dpo-nll").replace("[1.0, 1.0]", "[1.0]"))
    assert main(["--config", str(weights), *args[2:]]) == 2
    assert f"{weights}: field 'loss_weights': 1 weights for 2 loss types" in (
        capsys.readouterr().err
    )


def _recipe_text(name: str) -> str:
    return (ROOT / f"configs/recipes/{name}.yaml").read_text()


def test_the_workflow_checks_see_loss_names_and_lora_keys():
    """What ``snakemake -n`` checks recipes and overrides with (codedpo.training.fields, through
    codedpo.workflow.config): TRL's DPO loss names and PEFT's LoraConfig fields; every shipped
    recipe passes the check codedpo.training.train runs before loading anything."""
    import yaml

    from codedpo.training.fields import FieldError, check_recipe, coerce, train_fields

    dpo = train_fields("dpo")
    assert {"sigmoid", "ipo", "robust", "apo_zero", "sft"} <= set(dpo["loss_type"]["item_choices"])
    assert coerce("loss_type", "ipo", dpo["loss_type"]) == ["ipo"]
    assert coerce("loss_type", ["sigmoid", "sft"], dpo["loss_type"]) == ["sigmoid", "sft"]
    with pytest.raises(FieldError, match=r"'ipoo' is not one of .*\(did you mean 'ipo'\?\)"):
        coerce("loss_type", ["ipoo"], dpo["loss_type"])
    lora = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["q_proj"]}
    assert coerce("peft", {**lora, "merge": True}, dpo["peft"]) == {**lora, "merge": True}
    with pytest.raises(FieldError, match=r"unknown key 'lora_alhpa' \(did you mean 'lora_alpha'"):
        coerce("peft", {"lora_alhpa": 16}, dpo["peft"])
    with pytest.raises(FieldError, match="merge: 'yes' is not bool"):
        coerce("peft", {"merge": "yes"}, train_fields("rft")["peft"])
    for path in sorted((ROOT / "configs/recipes").glob("*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        check_recipe(str(path), recipe, recipe["method"])


def test_a_killed_dpo_run_resumes_to_the_uninterrupted_result(model_dir, pairs_file, tmp_path):
    """A DPO run killed (SIGKILL) after a checkpoint resumes from it on the same command, and
    ends with the weights an uninterrupted run gets: the data order, optimizer, scheduler and RNG
    come back from the checkpoint. Checkpoints live in OUT.tmp/, never in the final model."""
    recipe = ["--config", str(ROOT / "configs/recipes/dpo.yaml"), "--model_name_or_path",
              str(model_dir), "--train_file", str(pairs_file), *TINY, "--num_train_epochs", "3",
              "--save_steps", "1"]  # fmt: skip
    whole = tmp_path / "whole"
    assert main([*recipe, "--output_dir", str(whole)]) == 0

    out = tmp_path / "killed"
    tmp = out.with_name("killed.tmp")
    args = [*recipe, "--output_dir", str(out)]
    checkpoint = kill_after_checkpoint(args, out, tmp_path / "killed.log")
    assert 1 <= int(checkpoint.name.split("-")[1]) < 6

    assert main(args) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["resumed_from"], summary["global_step"]) == (checkpoint.name, 6)
    assert not list(out.glob("checkpoint-*")) and not tmp.exists()
    resumed, uninterrupted = state_dict(out), state_dict(whole)
    assert all(resumed[k].equal(uninterrupted[k]) for k in uninterrupted)
