"""The `codedpo` command: --version, --help with defaults in one usage style, and bad input (bytes
that are not UTF-8, malformed JSON, a broken gzip file, unknown ids) as one line naming the file
and the line, exit status 2, for every command that reads files."""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codedpo import cli
from codedpo.io import read_json

DEMO = Path(__file__).resolve().parents[1] / "src/codedpo/data/demo/problems.jsonl"


def run(capsys, *argv: str) -> tuple[int, str]:
    status = cli.main(list(argv))
    return status, capsys.readouterr().err


def one_error(capsys, *argv: str) -> str:
    status, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"codedpo {cli.version()}"


def parsers_of(command: str, monkeypatch) -> list[argparse.ArgumentParser]:
    """The argparse parsers ``codedpo COMMAND --help`` builds (subcommands' too)."""
    made = []
    init = argparse.ArgumentParser.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(argparse.ArgumentParser, "__init__", record)
    cli.main([command, "--help"])
    monkeypatch.undo()
    return made


@pytest.mark.parametrize("command", sorted(set(cli.COMMANDS) - {"train"}))
def test_every_option_has_help_and_shows_its_default(command, capsys, monkeypatch):
    """train's options are TRL's and ours (dataclass fields with help: tests/test_train.py)."""
    parsers = parsers_of(command, monkeypatch)
    out = capsys.readouterr().out
    assert out.startswith(f"usage: codedpo {command} "), out[:200]
    assert "(default: None)" not in out
    for parser in parsers:
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            name = f"{parser.prog} {action.option_strings[0]}"
            assert action.help, f"{name}: no help"
            flag = action.default is False and not isinstance(
                action, argparse.BooleanOptionalAction
            )
            text = formatter._get_help_string(action) % {"default": action.default}
            if action.required or flag or action.default is None:
                # no default to show: required, off unless given, or "none given"
                assert "(default: None)" not in text and "(default: False)" not in text, name
            else:
                assert "default" in text, f"{name}: default not shown"


def test_subcommands_share_the_style(capsys):
    assert cli.main(["plot", "pass-at-1", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: codedpo plot pass-at-1 ")
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


@pytest.fixture
def bad_files(tmp_path):
    problems = [json.loads(line) for line in DEMO.read_text().splitlines()[:3]]
    files = {"problems": tmp_path / "problems.jsonl"}
    files["problems"].write_text("".join(json.dumps(p) + "\n" for p in problems))
    files["bytes"] = tmp_path / "bytes.jsonl"
    files["bytes"].write_bytes(json.dumps(problems[0]).encode() + b'\n{"task_id": "caf\xe9"}\n')
    files["json"] = tmp_path / "json.jsonl"
    files["json"].write_text(json.dumps(problems[0]) + "\n{'task_id': 1}\n")
    files["gzip"] = tmp_path / "broken.jsonl.gz"
    files["gzip"].write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-20])
    files["samples"] = tmp_path / "samples.jsonl"
    sample = {"task_id": problems[0]["task_id"], "sample_id": "s0", "solution": "x = 1\n"}
    files["samples"].write_bytes(json.dumps(sample).encode() + b'\n{"solution": "\xff"}\n')
    files["unknown"] = tmp_path / "unknown.jsonl"
    unknown = {"task_id": "demo/nope", "raw": "x", "solution": "x", "sample_id": "s0",
               "status": "failed"}  # fmt: skip
    files["unknown"].write_text(json.dumps(unknown) + "\n")
    files["scores"] = tmp_path / "scores.json"
    files["scores"].write_bytes(b'{"policy": "a",\n "variant": "b\xff"}\n')
    files["out"] = tmp_path / "out"
    return {k: str(v) for k, v in files.items()}


def test_bad_bytes_and_bad_json_name_the_file_and_the_line(capsys, bad_files):
    f = bad_files
    line = one_error(capsys, "prepare", "--source", f["bytes"], "--out", f["out"])
    assert line == (
        f"codedpo prepare: error: {f['bytes']}:2: not valid UTF-8 (byte 0xe9 at column 17)"
    )
    line = one_error(capsys, "execute", "--problems", f["json"], "--samples", f["problems"],
                     "--out", f["out"], "--backend", "process")  # fmt: skip
    assert line.startswith(f"codedpo execute: error: {f['json']}:2: not valid JSON")
    line = one_error(capsys, "execute", "--problems", f["problems"], "--samples", f["samples"],
                     "--out", f["out"], "--backend", "process")  # fmt: skip
    assert line.startswith(f"codedpo execute: error: {f['samples']}:2: not valid UTF-8")
    line = one_error(capsys, "filter", "--problems", f["gzip"], "--benchmarks", f["problems"],
                     "--out", f["out"], "--report", f["out"] + ".json")  # fmt: skip
    assert line.startswith(f"codedpo filter: error: {f['gzip']}: not a readable gzip file")
    line = one_error(capsys, "tables", "--scores", f["scores"], "--models", "a",
                     "--benchmarks", "b", "--outdir", f["out"])  # fmt: skip
    assert line == (
        f"codedpo tables: error: {f['scores']}:2: not valid UTF-8 (byte 0xff at column 15)"
    )


def test_unknown_ids_are_one_line_errors(capsys, bad_files):
    f = bad_files
    line = one_error(capsys, "extract", "--problems", f["problems"], "--samples", f["unknown"],
                     "--out", f["out"])  # fmt: skip
    assert line == (
        f"codedpo extract: error: {f['unknown']}:1: field 'task_id': unknown task 'demo/nope'"
    )
    line = one_error(capsys, "score", "--problems", f["problems"], "--executions", f["unknown"],
                     "--benchmark", "b", "--policy", "p", "--variant", "base",
                     "--out", f["out"])  # fmt: skip
    assert line.startswith(f"codedpo score: error: {f['unknown']}:1: field 'task_id'")
    line = one_error(capsys, "build-pairs", "--problems", f["problems"], "--samples",
                     f["unknown"], "--executions", f["unknown"], "--out-pairs", f["out"],
                     "--out-rft", f["out"], "--out-stats", f["out"], "--seed", "1")  # fmt: skip
    assert f"{f['unknown']}:1" in line and "demo/nope" in line


def test_python_m_entry_points_fail_the_same_way(bad_files):
    f = bad_files
    proc = subprocess.run(
        [sys.executable, "-m", "codedpo", "extract", "--problems", f["problems"], "--samples",
         f["unknown"], "--out", f["out"]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"codedpo extract: error: {f['unknown']}:1: field 'task_id': unknown task "
        "'demo/nope'"
    ]


def test_read_json_names_the_line_of_bad_bytes(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{\n  "a": 1,\n  "b": "\xc3"\n}\n')
    with pytest.raises(ValueError, match=r"x.json:3: not valid UTF-8 \(byte 0xc3 at column 9\)"):
        read_json(path)


def test_slice_problems_writes_the_rounds_slice(tmp_path, capsys):
    """`codedpo slice-problems` (rule slice_train_problems): round k's slice of the pool, in the
    pool's order; the rounds' slices are disjoint and cover the pool; a bad round is one line."""
    from codedpo.problems.slices import slice_indices

    pool = [json.loads(line) for line in DEMO.read_text().splitlines()]
    slices = []
    for k in (1, 2, 3):
        out = tmp_path / f"r{k}.jsonl"
        assert cli.main(["slice-problems", "--problems", str(DEMO), "--rounds", "3", "--round",
                         str(k), "--seed", "0", "--out", str(out)]) == 0  # fmt: skip
        ids = [json.loads(line)["task_id"] for line in out.read_text().splitlines()]
        assert ids == [pool[i]["task_id"] for i in slice_indices(len(pool), k, 0, rounds=3)]
        slices.append(set(ids))
    assert set().union(*slices) == {p["task_id"] for p in pool}
    assert sum(map(len, slices)) == len(pool)
    line = one_error(capsys, "slice-problems", "--problems", str(DEMO), "--rounds", "3",
                     "--round", "4", "--out", str(tmp_path / "r4.jsonl"))  # fmt: skip
    assert line == "codedpo slice-problems: error: --round must be in [1, 3], got 4"
