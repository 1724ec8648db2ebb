"""LoRA through PEFT: adapter checkpoints that every later stage loads (issue 14, part 3).

One tiny Llama, trained with configs/recipes/dpo-lora.yaml a few steps: saved as an adapter and
as a merged model from the same seed, the two are the same model wherever a stage loads them
(generation, the analysis, vLLM's merged copy), and the next round trains from the adapter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import tiny_model_dir  # noqa: E402

from codedpo.io import InputError  # noqa: E402
from codedpo.models.load import adapter_chain, check_model_path, load_causal_lm  # noqa: E402
from codedpo.training.train import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The tiny model in a few steps: a large rate, 8 pairs per step, no warmup (the first step moves
# the adapter off zero), one thread, short sequences.
TINY = ["--activation_checkpointing", "false", "--learning_rate", "2e-2", "--max_length", "128"]
TINY += ["--effective_batch_size", "8", "--per_device_train_batch_size", "8"]
TINY += ["--num_train_epochs", "2", "--warmup_steps", "0"]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """The base model, a pairs file and an RFT file, and the LoRA checkpoints trained on them."""
    base = tiny_model_dir(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("peft")
    pairs, rft = tmp / "pairs.jsonl", tmp / "rft.jsonl"
    pairs.write_text("".join(json.dumps({
        "prompt": user(f"Write `f{k}(x)` returning x + {k}."),
        "chosen": assistant(f"```python\ndef f{k}(x):\n    return x + {k}\n```"),
        "rejected": assistant(f"```python\ndef f{k}(x):\n    return x - {k}\n```"),
    }) + "\n" for k in range(8)))  # fmt: skip
    rft.write_text("".join(json.dumps({
        "prompt": user(f"Write `f{k}(x)` returning x + {k}."),
        "completion": assistant(f"```python\ndef f{k}(x):\n    return x + {k}\n```"),
    }) + "\n" for k in range(8)))  # fmt: skip
    out = {"base": base, "pairs": pairs, "rft": rft}
    # The recipe's LoRA settings, merged: given as JSON on the command line (as the workflow
    # passes an override of peft).
    merged = {"merge": True, "r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
              "target_modules": "all-linear"}  # fmt: skip
    for name, extra in (("adapter", []), ("merged", ["--peft", json.dumps(merged)])):
        out[name] = tmp / name
        assert train("dpo-lora", base, pairs, out[name], extra) == 0, name
    return out


def train(recipe: str, model: Path, data: Path, out: Path, extra: list[str] = ()) -> int:
    args = ["--config", str(ROOT / f"configs/recipes/{recipe}.yaml"), "--model_name_or_path"]
    args += [str(model), "--train_file", str(data), "--output_dir", str(out), *TINY, *extra]
    return main(args)


def logits(model, text: str = "def f(x):\n    return x + 1\n"):
    import torch

    from codedpo.models.chat import load_tokenizer

    ids = torch.tensor([load_tokenizer(model.name_or_path)(text)["input_ids"]])
    with torch.no_grad():
        return model.eval()(ids).logits


def summary(path: Path) -> dict:
    return json.loads((path / "train_summary.json").read_text())


def test_adapter_and_merged_checkpoints_are_the_same_model(work):
    import torch
    from transformers import AutoModelForCausalLM

    adapter, merged = work["adapter"], work["merged"]
    # merge: false saves PEFT's adapter (+ tokenizer, generation config, summary), no full model.
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
            "generation_config.json", "train_summary.json"} <= names  # fmt: skip
    assert "config.json" not in names and "model.safetensors" not in names
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(work["base"])
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 32, 0.05)
    assert summary(adapter)["adapter"] is True and summary(adapter)["peft"]["r"] == 16
    assert adapter_chain(adapter) == [str(work["base"]), str(adapter)]
    # merge: true (given as JSON on the command line) saves a full model, no adapter.
    assert (merged / "config.json").exists() and not (merged / "adapter_config.json").exists()
    assert summary(merged)["adapter"] is False
    assert adapter.stat().st_size and sum(p.stat().st_size for p in adapter.iterdir()) < sum(
        p.stat().st_size for p in merged.iterdir()
    )

    from_adapter = logits(load_causal_lm(str(adapter)))
    from_merged = logits(AutoModelForCausalLM.from_pretrained(merged))
    untrained = logits(load_causal_lm(str(work["base"])))
    torch.testing.assert_close(from_adapter, from_merged, atol=1e-5, rtol=1e-4)
    assert (from_adapter - untrained).abs().max() > 1e-2  # the adapter learned something
    # The analysis loads its models the same way.
    from codedpo.reporting.implicit_reward import _load_model

    torch.testing.assert_close(logits(_load_model(str(adapter), "cpu")), from_merged,
                               atol=1e-5, rtol=1e-4)  # fmt: skip


def test_generation_from_an_adapter_equals_the_merged_model(work, tmp_path):
    """Sampling and eval generation (HF backend) from the adapter directory give the samples of
    the merged model; vLLM's input, the adapter merged into a model directory, is the same model."""
    import torch
    from transformers import AutoModelForCausalLM

    from codedpo.models.load import save_merged
    from codedpo.sampling.sample import generate_responses

    problems = [{"task_id": f"demo/p{k}", "prompt": f"Write `f{k}(x)` returning x + {k}.",
                 "entry_point": f"f{k}", "split": "train", "tests": {"kind": "call", "cases": []}}
                for k in range(3)]  # fmt: skip
    kwargs = dict(n=2, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=1,
                  extract=lambda response, problem: response)  # fmt: skip
    by_adapter = generate_responses(str(work["adapter"]), problems, **kwargs)
    by_merged = generate_responses(str(work["merged"]), problems, **kwargs)
    assert [r["raw"] for r in by_adapter] == [r["raw"] for r in by_merged]
    untrained = generate_responses(str(work["base"]), problems, **kwargs)
    assert [r["raw"] for r in untrained] != [r["raw"] for r in by_adapter]

    copy = save_merged(str(work["adapter"]), tmp_path / "merged-copy")
    assert (copy / "config.json").exists() and (copy / "generation_config.json").exists()
    torch.testing.assert_close(logits(AutoModelForCausalLM.from_pretrained(copy)),
                               logits(AutoModelForCausalLM.from_pretrained(work["merged"])),
                               atol=1e-5, rtol=1e-4)  # fmt: skip


def test_next_round_trains_from_the_adapter(work, tmp_path):
    """Round 2 starts from round 1's adapter (loaded merged) and saves a new adapter on it; the
    reference is the round's start by default (loss log 2 at the first step) or, with
    --ref_model_name_or_path, the original model (round 1's margin from the first step)."""
    round2 = tmp_path / "round2"
    base, adapter = str(work["base"]), str(work["adapter"])
    assert train("dpo-lora", work["adapter"], work["pairs"], round2,
                 ["--ref_model_name_or_path", base]) == 0  # fmt: skip
    assert adapter_chain(round2) == [base, adapter, str(round2)]
    assert summary(round2)["ref_model"] == base
    first = [h for h in summary(round2)["log_history"] if "loss" in h][0]
    # Policy = round 1's model, reference = the original: round 1 already separated the pairs.
    assert first["rewards/margins"] > 0.05 and first["loss"] < 0.69
    round1_last = [h for h in summary(work["adapter"])["log_history"] if "loss" in h][-1]
    assert first["loss"] < round1_last["loss"]  # one more update since round 1's last log
    assert (logits(load_causal_lm(str(round2))) - logits(load_causal_lm(adapter))).abs().max() > 0

    # Full fine-tuning from the adapter, reference = the start (TRL's default semantics).
    full = tmp_path / "round2-full"
    assert train("dpo", work["adapter"], work["pairs"], full, ["--learning_rate", "1e-3"]) == 0
    first = [h for h in summary(full)["log_history"] if "loss" in h][0]
    assert first["loss"] == pytest.approx(0.693147, abs=1e-4)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-4)
    assert summary(full)["ref_model"] == adapter and (full / "config.json").exists()
    assert (logits(load_causal_lm(str(full))) - logits(load_causal_lm(adapter))).abs().max() > 0


def test_rft_trains_an_adapter(work, tmp_path):
    out = tmp_path / "rft"
    assert train("rft-lora", work["base"], work["rft"], out) == 0
    assert (out / "adapter_config.json").exists() and summary(out)["method"] == "rft"
    assert summary(out)["ref_model"] is None
    losses = [h["loss"] for h in summary(out)["log_history"] if "loss" in h]
    assert losses[1] < losses[0]  # SFT on the chosen responses lowers their NLL


def test_bad_peft_settings_and_adapter_paths_are_named(work, tmp_path, capsys):
    recipe = tmp_path / "dpo-lora-typo.yaml"
    recipe.write_text((ROOT / "configs/recipes/dpo-lora.yaml").read_text().replace(
        "  r: 16 ", "  rank: 16 "))  # fmt: skip
    args = ["--config", str(recipe), "--model_name_or_path", str(work["base"]), "--train_file"]
    args += [str(work["pairs"]), "--output_dir", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {recipe}: field 'peft': unknown key 'rank'" in err
    args[1] = str(ROOT / "configs/recipes/dpo-lora.yaml")
    assert main([*args, "--peft", "{r: 4}"]) == 2
    assert "error: --peft: not a JSON object" in capsys.readouterr().err
    args[1] = str(ROOT / "configs/recipes/rft-lora.yaml")
    assert main([*args, "--ref_model_name_or_path", str(work["base"])]) == 2
    assert "only dpo has a reference model" in capsys.readouterr().err

    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tmp_path / "gone")})
    )
    with pytest.raises(InputError, match="adapter_config.json: field 'base_model_name_or_path'"):
        check_model_path(str(broken))
    with pytest.raises(InputError, match="model directory not found"):
        load_causal_lm(str(broken))
