"""Extract runnable Python from a chat model's response.

The response is Markdown-ish chatter with zero or more fenced code blocks, sometimes cut off by
the token limit. :func:`extract_code` picks the code to execute; when the problem names an entry
point it also prunes the code to what that function needs (imports, helpers, constants), so the
model's own demo prints, asserts and ``__main__`` blocks never run inside the test harness.
The parsing is done with :mod:`ast`; regexes only find the fences.

The caller keeps the raw response (DPO trains on the raw text); this module only decides what the
executor runs. When nothing parses, the best-effort text is returned and the executor reports the
syntax error, so a broken response is scored as the model's failure, not silently dropped.

Command line (reads samples JSONL with ``raw``, writes them back with ``solution`` filled)::

    codedpo extract --problems problems.jsonl --samples raw.jsonl --out samples.jsonl
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from codedpo.io import InputError, read_jsonl, require, write_jsonl
from codedpo.problems.python_source import node_source
from codedpo.verbs import command_parser

# Info strings that mean "this block is Python". An untagged fence counts too: chat models often
# omit the tag. Anything else (bash, text, output, json, ...) is prose or I/O, not the solution.
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3", "ipython", "sage"})

# Opening fence: three or more backticks/tildes, an optional info string, then a line break.
_OPEN_FENCE = re.compile(r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)[^\n`]*\n")
# CodeLlama-Instruct style wrappers.
_PYTHON_TAG_BLOCK = re.compile(r"\[PYTHON\]\n?(?P<code>.*?)(?:\[/PYTHON\]|\Z)", re.DOTALL)

# Lines that plausibly start a top-level statement of code; tried first when searching prose for
# the code inside it (a cheap ordering that finds the answer with few parses).
_CODE_START = re.compile(
    r"^(def |async def |class |import |from \S+ import |@|if __name__|[A-Za-z_][\w, ]*\s*=|#)"
)
# A line that reads as Python, not prose: what an unfenced response without a parsing stretch
# must have for its text to be handed over as (broken) code; without one it has no code at all.
_CODE_LINE = re.compile(
    r"^(def |async def |class |import |from \S+ import |@\w|return\b|yield\b|raise\b|"
    r"for \w[\w, ()]* in |while .+:|if .+:|elif .+:|else\s*:|try\s*:|except\b|with .+:|print\(|"
    r"[A-Za-z_][\w.\[\], ]*\s*[-+*/%]?=[^=])"
)
# Bound on ast.parse calls when searching unfenced text, so a pathological 4k-token response
# cannot stall a shard: a 100-line response with 30 top-level lines needs well under this.
_MAX_PARSES = 600

# Top-level calls that configure the interpreter for the solution (deep recursion is common in
# DP answers) and so must survive pruning, unlike the demo calls around them.
_KEEP_CALL_ATTRS = frozenset({"setrecursionlimit", "set_int_max_str_digits", "stack_size"})


@dataclass
class _Block:
    lang: str
    text: str
    terminated: bool


def names_tests_use(tests: dict) -> frozenset[str]:
    """Names a problem's tests use from the solution, besides the entry point.

    MBPP's test setup may build objects from a class the solution must define (Mbpp/367's
    ``Node``); pruning to the entry point alone would drop it. Names the tests bind themselves
    (their own helpers, ``check``, variables) and the problem's prelude gives are left out.
    """
    tests_code = [tests.get("setup"), tests.get("helpers"), *(tests.get("asserts") or [])]
    used: set[str] = set()
    bound: set[str] = set()
    for source, is_test in [*((s, True) for s in tests_code), (tests.get("prelude"), False)]:
        try:
            tree = ast.parse(source or "")
        except SyntaxError:
            continue
        if is_test:
            used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for node in tree.body:
            bound.update(_binds(node))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update(_import_binds(node))
    return frozenset(used - bound)


def extract_code(response: str, entry_point: str | None, keep: Iterable[str] = ()) -> str:
    """Return the Python code to execute from a model ``response`` (:func:`extract`)."""
    return extract(response, entry_point, keep)[0]


def has_code(response: str) -> bool:
    """Whether a response holds anything that reads as code: a fenced block, a stretch that
    parses, or a line shaped like a Python statement (``def f(x) return x`` is broken code;
    ``I cannot help with that.`` is none)."""
    if _fenced_blocks(response) or _largest_parsing_span(response) is not None:
        return True
    return any(_CODE_LINE.match(line.strip()) for line in response.splitlines())


def extract(
    response: str, entry_point: str | None, keep: Iterable[str] = ()
) -> tuple[str, list[str]]:
    """The Python code to execute from a model ``response``, and what it rescued.

    What it rescued beyond ``evalplus.sanitize``, which keeps one stretch of code: with
    ``joined_blocks`` the code needs definitions from more than one fenced block (a helper in
    one, the function in the next), which sanitize would have lost. Scores count it.

    Fenced blocks tagged Python (or untagged) are preferred; with several, the parseable ones
    are joined with the block defining ``entry_point`` last (so its definitions win, as they
    would at run time). Without fences the longest parseable stretch of the text is used; a
    response with no code at all (:func:`has_code`) gives ``""``. With
    ``entry_point`` the result keeps only what the entry point needs, and the top-level
    definitions of the names in ``keep`` (what the tests use: :func:`names_tests_use`).
    """
    entry = entry_point.split(".")[0].strip() if entry_point else None
    keep = frozenset(keep)
    blocks = _fenced_blocks(response)
    python_blocks = [b for b in blocks if b.lang.lower() in _PYTHON_TAGS]
    # A solution fenced with a wrong tag (```python3.10, ```Python code) is still worth a try
    # when nothing is tagged Python.
    candidates = python_blocks or blocks

    if not candidates:
        code = _largest_parsing_span(response)
        if code is None:
            # Broken code is handed over, so the error is the model's own; prose alone is no
            # code (the executor's ``no_code`` verdict, not a syntax error).
            return (response.strip() + "\n" if has_code(response) else ""), []
        return _finish(code, entry, keep), []

    parsed: list[tuple[str, ast.Module]] = []
    for block in candidates:
        text = _largest_parsing_span(block.text)
        if text is not None and text.strip():
            parsed.append((text, ast.parse(text)))
    if not parsed:
        # Nothing parses: hand over the most substantial block so the error is the model's own.
        best = max(candidates, key=lambda b: len(b.text.strip()))
        return textwrap.dedent(best.text).strip() + "\n", []

    if entry is not None:
        defining = [i for i, (_, tree) in enumerate(parsed) if entry in _defined_names(tree)]
        if defining:
            # The last block defining the entry point is the model's final answer ("here is an
            # improved version"); the others may hold helpers, so join all and prune.
            primary = defining[-1]
            order = [i for i in range(len(parsed)) if i != primary] + [primary]
            code = _finish("\n\n".join(parsed[i][0].rstrip() for i in order), entry, keep)
            alone = _finish(parsed[primary][0], entry, keep) if len(parsed) > 1 else code
            return code, (["joined_blocks"] if code != alone else [])
        return _finish("\n\n".join(text.rstrip() for text, _ in parsed), entry, keep), (
            ["joined_blocks"] if len(parsed) > 1 else []
        )

    # No entry point (stdio programs): one defining block is the program, the others are usage;
    # definitions spread over several blocks are joined; plain scripts: the largest one.
    if len(parsed) == 1:
        return _finish(parsed[0][0], None), []
    defining = [i for i, (_, tree) in enumerate(parsed) if _defined_names(tree)]
    if len(defining) == 1:
        return _finish(parsed[defining[0]][0], None), []
    if len(defining) >= 2:
        return _finish("\n\n".join(text.rstrip() for text, _ in parsed), None), ["joined_blocks"]
    best = max(range(len(parsed)), key=lambda i: (len(parsed[i][1].body), i))
    return _finish(parsed[best][0], None), []


def _fenced_blocks(text: str) -> list[_Block]:
    """Fenced code blocks in order; an unterminated last fence runs to the end of the text."""
    blocks: list[_Block] = []
    pos = 0
    while True:
        match = _OPEN_FENCE.search(text, pos)
        if match is None:
            break
        fence = match.group("fence")
        start = match.end()
        # The closing fence may sit at the end of the last code line ("    return x```").
        close = text.find(fence, start)
        if close == -1:
            blocks.append(_Block(match.group("lang"), text[start:], terminated=False))
            break
        blocks.append(_Block(match.group("lang"), text[start:close], terminated=True))
        pos = close + len(fence)
        # Skip the rest of the closing fence line (extra backticks, trailing spaces).
        newline = text.find("\n", pos)
        pos = len(text) if newline == -1 else newline + 1
    if not blocks:
        for m in _PYTHON_TAG_BLOCK.finditer(text):
            blocks.append(_Block("python", m.group("code"), terminated=True))
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
        return False
    return True


def _largest_parsing_span(text: str) -> str | None:
    """Longest stretch of whole top-level statements that parses, or None.

    Spans start and end only at column-0 lines, so a function cut by the token limit is dropped
    whole instead of being truncated into a shorter function that might run (and mislead).
    """
    code = textwrap.dedent(text).strip("\n")
    if not code.strip():
        return None
    if _parses(code):
        return code + "\n"
    lines = code.split("\n")
    bounds = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t")]
    ends = [*bounds[1:], len(lines)]
    starts = sorted(bounds, key=lambda i: (not _CODE_START.match(lines[i]), i))
    best: tuple[int, int] | None = None
    best_size = 0
    parses = 0
    for start in starts:
        for end in reversed(ends):
            if end <= start:
                break
            size = sum(1 for line in lines[start:end] if line.strip())
            if size <= best_size:
                break
            parses += 1
            if parses > _MAX_PARSES:
                break
            if _parses("\n".join(lines[start:end])):
                best, best_size = (start, end), size
                break
        if parses > _MAX_PARSES:
            break
    if best is None:
        return None
    return "\n".join(lines[best[0] : best[1]]).strip("\n") + "\n"


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _binds(node: ast.stmt) -> list[str]:
    """Names a top-level definition binds (functions, classes, assignments)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _target_names(t)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return _target_names(node.target)
    return []


def _import_binds(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = []
    for alias in node.names:
        if alias.name == "*":
            continue
        names.append(alias.asname or alias.name.split(".")[0])
    return names


def _defined_names(tree: ast.Module) -> set[str]:
    return {
        name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign))
        for name in _binds(node)
    }


def _referenced(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _is_kept_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr in _KEEP_CALL_ATTRS
    )


def _is_import_guard(node: ast.stmt) -> bool:
    """``try: import x / except ImportError: ...``: an optional import, part of the setup."""
    if not isinstance(node, ast.Try):
        return False
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.Pass)
    stmts = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
    return all(isinstance(s, allowed) for s in stmts)


def _is_noise(node: ast.stmt) -> bool:
    """Demo code at top level: main guards, asserts, bare calls and expressions (prints)."""
    if _is_main_guard(node) or isinstance(node, ast.Assert):
        return True
    return isinstance(node, ast.Expr) and not _is_kept_call(node)


def _finish(code: str, entry: str | None, roots: frozenset[str] = frozenset()) -> str:
    """Prune parsed ``code`` to what ``entry`` (and ``roots``) need; without an entry point
    return it as is."""
    code = code.strip("\n") + "\n"
    if entry is None:
        return code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.split("\n")

    # Last binding wins, as at run time; definitions take precedence over imports of the same
    # name ("from solution import f" in a test block must not shadow the model's def f).
    bindings: dict[str, list[int]] = {}
    for i, node in enumerate(tree.body):
        for name in _binds(node):
            bindings.setdefault(name, []).append(i)
    definitions: dict[str, list[int]] = {}
    for name, where in bindings.items():
        last = tree.body[where[-1]]
        # A later def/class replaces the earlier ones outright; assignments may build on
        # earlier bindings (X = []; X += [1]), so all of them are kept.
        is_def = isinstance(last, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        definitions[name] = where[-1:] if is_def else where
    if entry not in definitions:
        # Entry point not defined here: keep everything but the demo noise; the executor will
        # report the missing name.
        kept = [n for n in tree.body if not _is_noise(n)]
        return "\n\n".join(node_source(lines, n) for n in kept).strip("\n") + "\n"

    keep: set[int] = set()
    needed: set[str] = set()
    todo = [*definitions[entry], *(i for i, n in enumerate(tree.body) if _is_kept_call(n))]
    for name in roots:
        where = definitions.get(name, [])
        if where and isinstance(
            tree.body[where[-1]], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            todo.extend(where)  # definitions only: the model's own demo variables stay out
    while todo:
        i = todo.pop()
        if i in keep:
            continue
        keep.add(i)
        for name in _referenced(tree.body[i]) - needed:
            needed.add(name)
            todo.extend(definitions.get(name, ()))

    for i, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            keep.add(i)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            binds = _import_binds(node)
            # Star imports cannot be resolved statically: keep them rather than break the code.
            if not binds or any(b in needed and b not in definitions for b in binds):
                keep.add(i)
        elif _is_import_guard(node):
            keep.add(i)
    return "\n\n".join(node_source(lines, tree.body[i]) for i in sorted(keep)).strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("extract", __doc__)
    parser.add_argument("--problems", required=True, help="problems JSONL (for entry points)")
    parser.add_argument("--samples", required=True, help="samples JSONL with a 'raw' field")
    parser.add_argument("--out", required=True, help="samples JSONL with 'solution' filled in")
    args = parser.parse_args(argv)

    entry_points: dict[str, str | None] = {}
    needs: dict[str, frozenset[str]] = {}
    for lineno, rec in read_jsonl(args.problems):
        where = f"{args.problems}:{lineno}"
        task_id = require(rec, "task_id", str, where)
        entry_points[task_id] = rec.get("entry_point")
        tests = rec.get("tests") or {}
        if not isinstance(tests, dict):
            raise InputError(f"{where}: field 'tests' must be an object")
        needs[task_id] = names_tests_use(tests)

    def filled():
        for lineno, rec in read_jsonl(args.samples):
            where = f"{args.samples}:{lineno}"
            task_id = require(rec, "task_id", str, where)
            raw = require(rec, "raw", str, where)
            if task_id not in entry_points:
                raise InputError(f"{where}: field 'task_id': unknown task {task_id!r}")
            code, rescued = extract(raw, entry_points[task_id], needs[task_id])
            yield {**rec, "solution": code, **({"rescued": rescued} if rescued else {})}

    n = write_jsonl(args.out, filled())
    print(f"extracted {n} solutions -> {args.out}", file=sys.stderr)
    return 0
