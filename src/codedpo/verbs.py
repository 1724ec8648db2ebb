"""What every ``codedpo VERB`` shares: a parser in the house style, and bad input as one line.

Each stage's command is a module with ``main(argv)`` that builds its parser with
:func:`command_parser`; :mod:`codedpo.cli` maps verbs to those modules and is the only entry
point (``codedpo VERB ...``, or ``python -m codedpo VERB ...`` where a launcher needs a module,
as ``accelerate launch -m codedpo train`` does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from codedpo.io import InputError

# Exit status of a bad-input error (argparse uses 2 for bad arguments too).
BAD_INPUT = 2


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, where it has one: not for a required option, a
    flag that is off unless given, an option whose default is "none given" (its help says what
    that means), or one whose help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        off = action.default is False and not isinstance(action, argparse.BooleanOptionalAction)
        if (action.required or off or action.default is None or action.default == argparse.SUPPRESS
                or "(default:" in text or "%(default)" in text):  # fmt: skip
            return text
        return super()._get_help_string(action)


def command_parser(verb: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of ``codedpo VERB``: that usage line, ``description`` (a module docstring is
    cut to its first paragraph) and every option's default in ``--help``."""
    return argparse.ArgumentParser(
        prog=f"codedpo {verb}",
        description=(description or "").strip().split("\n\n")[0] or None,
        formatter_class=DefaultsFormatter,
    )


def run_main(main: Callable[[list[str] | None], int | None], name: str, argv=None) -> int:
    """Run a verb's ``main``: an :class:`~codedpo.io.InputError` becomes one line on stderr and
    exit status 2, instead of a traceback."""
    try:
        return int(main(argv) or 0)
    except InputError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
