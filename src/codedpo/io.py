"""File helpers shared by every stage: JSONL reading with located errors, atomic writes, hashes.

Every output of the pipeline goes through :func:`atomic_write`, so a job killed half-way leaves
either the old file or nothing, never a truncated file that a rerun would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad user input: the message names the file, the line and the field."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; give the file the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(fd, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write records as JSON lines, atomically. Returns the number written."""
    n = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)``; a malformed line is an :class:`InputError` naming it.

    Bytes that are not UTF-8, JSON that does not parse, a line that is not an object and a broken
    gzip stream are all one-line errors naming the file and the line.
    """
    path = _existing_file(path)
    with _open_binary(path) as fh, _gzip_errors(path):
        for lineno, raw in enumerate(fh, start=1):
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg}, column "
                                 f"{exc.colno})") from None  # fmt: skip
            if not isinstance(record, dict):
                raise InputError(
                    f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}"
                )
            yield lineno, record


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    return path


def _open_binary(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


@contextlib.contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    import zlib

    try:
        yield
    except (EOFError, zlib.error, OSError) as exc:
        if path.suffix != ".gz" or isinstance(exc, FileNotFoundError):
            raise
        raise InputError(f"{path}: not a readable gzip file ({exc})") from None


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        # utf-8-sig on the first line: a byte-order mark some editors write is not an error.
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1})"
        ) from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in ``path`` (gzip if it ends in .gz); errors name the file and line."""
    path = _existing_file(path)
    with _open_binary(path) as fh, _gzip_errors(path):
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"{path}:{lineno}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column "
                         f"{exc.colno})") from None  # fmt: skip


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def require(record: dict, field: str, types: type | tuple[type, ...], where: str) -> Any:
    """Return ``record[field]`` or raise an :class:`InputError` naming ``where`` and the field."""
    if field not in record:
        raise InputError(f"{where}: missing field '{field}'")
    value = record[field]
    if not isinstance(value, types):
        names = (
            types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        )
        raise InputError(f"{where}: field '{field}' must be {names}, got {type(value).__name__}")
    return value
