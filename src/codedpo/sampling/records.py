"""From generated token ids to sample records, the same for every backend.

A response ends at its first stop token (:mod:`codedpo.sampling.stops`): the tokens after it
are dropped, the stop token itself is not part of ``raw``, and decoding skips special tokens, so
neither the stored response nor the code extracted from it contains template markup. Each record
says why it ended (``finish_reason``: ``stop`` at a stop token, ``length`` at the token budget),
how many tokens were generated (the stop token included), and which backend, library versions and
settings produced it (``generator``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from codedpo.sampling.requests import Request


@dataclass(frozen=True)
class Generated:
    """One decoded response."""

    text: str
    finish_reason: str  # "stop" or "length"
    num_tokens: int


def finish(token_ids: Sequence[int], stop_ids: Sequence[int], tokenizer) -> Generated:
    """Cut ``token_ids`` at the first stop token and decode what comes before it."""
    stops = set(stop_ids)
    ids = list(token_ids)
    for position, token in enumerate(ids):
        if token in stops:
            body = ids[:position]
            return Generated(_decode(tokenizer, body), "stop", position + 1)
    return Generated(_decode(tokenizer, ids), "length", len(ids))


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (the ones a backend ran with)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def generator_info(
    backend: str, packages: dict[str, str], settings: dict, stop_ids: Sequence[int]
) -> dict:
    """The ``generator`` field of every record of one run."""
    return {
        "backend": backend,
        "versions": packages,
        "settings": settings,
        "stop_token_ids": list(stop_ids),
    }


def default_extract() -> Callable[[str, dict], tuple[str, list[str]]]:
    """:func:`codedpo.sampling.extract.extract` with the problem's entry point and test names: the
    code, and what the extraction rescued beyond ``evalplus.sanitize`` (the record's
    ``rescued``)."""
    from codedpo.sampling.extract import extract, names_tests_use

    names: dict[str, frozenset[str]] = {}  # per problem: its n samples share one parse

    def extract_one(raw: str, problem: dict) -> tuple[str, list[str]]:
        task = problem["task_id"]
        if task not in names:
            names[task] = names_tests_use(problem.get("tests") or {})
        return extract(raw, problem.get("entry_point"), names[task])

    return extract_one


def sample_records(
    problems: Sequence[dict],
    requests: Sequence[Request],
    generated: Sequence[Generated],
    extract: Callable[[str, dict], str | tuple[str, list[str]]],
    generator: dict,
) -> list[dict]:
    """EvalPlus-style sample records (``docs/formats.md``), in the order of ``requests``."""
    records = []
    for request, response in zip(requests, generated, strict=True):
        problem = problems[request.problem]
        solution = extract(response.text, problem)
        solution, rescued = solution if isinstance(solution, tuple) else (solution, [])
        records.append(
            {
                "task_id": problem["task_id"],
                "sample_id": f"{problem['task_id']}/{request.index}",
                "index": request.index,
                "raw": response.text,
                "solution": solution,
                **({"rescued": rescued} if rescued else {}),
                "prompt": problem["prompt"],
                "finish_reason": response.finish_reason,
                "num_tokens": response.num_tokens,
                "generator": generator,
            }
        )
    return records
