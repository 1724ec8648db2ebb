"""Atomic writes and located read errors."""

from __future__ import annotations

import os
import stat

import pytest

from codedpo.io import InputError, atomic_write, read_json, read_jsonl, write_jsonl


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"a": 1}])
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write("half a li")
        raise RuntimeError("killed")
    assert path.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary left behind


def test_atomic_write_uses_ordinary_permissions(tmp_path):
    path = tmp_path / "x.json"
    write_jsonl(path, [])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(InputError, match=r"bad.jsonl:3: expected a JSON object"):
        list(read_jsonl(path))
    with pytest.raises(InputError, match="file not found"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    path.write_text('{"a": 1}\n{"a": 1,, "b": 2}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: not valid JSON \(Expecting property "
                       r"name enclosed in double quotes, column 9\)"):  # fmt: skip
        list(read_jsonl(path))
    json_file = tmp_path / "bad.json"
    json_file.write_text('{\n  "a": [1, 2,\n  ]\n}\n')
    with pytest.raises(InputError, match=r"bad.json:3: not valid JSON \(.*, column 3\)"):
        read_json(json_file)
