"""``codedpo download``: fetch a benchmark file at a pinned version and check its hash.

    codedpo download --name HumanEvalPlus-v0.1.10.jsonl.gz --out resources/benchmarks/...

For clusters without internet, fetch once on a login node (or copy the files) and point the
config's ``benchmarks.<name>.path`` at them; nothing is downloaded at DAG time.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
from pathlib import Path

from codedpo.io import InputError, atomic_write
from codedpo.verbs import command_parser

# name -> (url, sha256, whether the hash is of the gunzipped content)
SOURCES: dict[str, tuple[str, str, bool]] = {
    "HumanEval.jsonl.gz": (
        "https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
        "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
        False,
    ),
    "HumanEvalPlus-v0.1.10.jsonl.gz": (
        "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/"
        "HumanEvalPlus.jsonl.gz",
        "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101",
        False,
    ),
    "MbppPlus-v0.2.0.jsonl.gz": (
        "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
        "b54e762755248ca411b523c917fa9f93c07b5ff2966bf60b3917b853926a3dad",
        True,
    ),
    "mbpp.jsonl": (
        "https://github.com/google-research/google-research/raw/master/mbpp/mbpp.jsonl",
        "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f",
        False,
    ),
    # newfacade/LeetCodeDataset's v0.3.1 test split (228 problems, each with its estimated_date;
    # the Hub's v0.3.1 test split) at a pinned commit of its repository.
    "LeetCodeDataset-v0.3.1-test.jsonl.gz": (
        "https://github.com/newfacade/LeetCodeDataset/raw/"
        "182cd19fd53161efd70a1ef074fe1056b659bfa3/data/LeetCodeDataset-v0.3.1-test.jsonl.gz",
        "3ae536cb41342076691730b72424fdfb9264f233e05c81bf37b5f7e227ea1853",
        False,
    ),
}


def check_hash(data: bytes, name: str) -> None:
    _, expected, unzipped = SOURCES[name]
    content = gzip.decompress(data) if unzipped else data
    got = hashlib.sha256(content).hexdigest()
    if got != expected:
        raise InputError(f"{name}: sha256 {got} does not match the pinned {expected}")


def download(name: str, out: Path, timeout: float = 120) -> None:
    if name not in SOURCES:
        raise InputError(f"unknown benchmark file {name!r}; known: {', '.join(SOURCES)}")
    url = SOURCES[name][0]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
    except OSError as exc:
        raise InputError(
            f"cannot download {url} ({exc}). Offline? Copy the file to {out} or set the "
            "benchmark's `path` in the config to a local copy."
        ) from None
    check_hash(data, name)
    with atomic_write(out, "wb") as fh:
        fh.write(data)


def main(argv: list[str] | None = None) -> int:
    p = command_parser("download", __doc__.split("\n")[0])
    p.add_argument("--name", required=True, choices=sorted(SOURCES), help="the pinned file")
    p.add_argument("--out", type=Path, required=True, help="where to write it (atomic)")
    args = p.parse_args(argv)
    download(args.name, args.out)
    print(f"{args.out}: sha256 verified")
    return 0
