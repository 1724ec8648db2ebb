"""Config errors the user reads: one or two lines naming the config file that sets the key, the
key path and what is wrong, with the nearest valid key where one was misspelled (shared by
:mod:`codedpo.workflow.config` and the checks it calls)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A name that becomes a directory: arms, recipes.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A configuration error; the message is what the user reads (one or two lines)."""


@dataclass(frozen=True)
class Layer:
    """One source of configuration as the user wrote it: a file, or ``--config``."""

    label: str
    data: Any


def location(path: Sequence) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _get(data: Any, path: Sequence) -> tuple[bool, Any]:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False, None
    return True, data


def source_of(path: Sequence, layers: Sequence[Layer]) -> str:
    """The last layer that sets ``path`` (or its nearest parent): where the user wrote it."""
    for depth in range(len(path), 0, -1):
        for layer in reversed(layers):
            if _get(layer.data, path[:depth])[0]:
                return layer.label
    return " + ".join(layer.label for layer in layers) or "config"


def nearest(word: str, options) -> str | None:
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return match[0] if match else None


def _hint(word: str, options) -> str:
    near = nearest(word, options)
    if near:
        return f" (did you mean '{near}'?)"
    return "\n  valid keys: " + ", ".join(sorted(map(str, options)))


def error(layers: Sequence[Layer], path: Sequence, what: str, label: str | None = None):
    return ConfigError(f"{label or source_of(path, layers)}: {location(path)}: {what}")
