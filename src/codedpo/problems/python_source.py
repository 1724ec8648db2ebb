"""Python source, as problems are prepared and responses cut: a HumanEval-style
``check(candidate)`` function split into its assertions (each is then one test of the problem;
the executor turns each into "evaluate inside, compare outside": :mod:`codedpo.execution.asserts`),
and the source lines of a top-level statement.
"""

from __future__ import annotations

import ast


def split_check_function(source: str, name: str = "check") -> list[str] | None:
    """The assert statements of HumanEval's ``def check(candidate)``, or None if it has more.

    Only a body made of assertions (plus docstrings, ``pass`` and metadata constants outside
    the function) can be split into separate tests; anything else (loops, helper variables,
    imports inside) runs as one in-process test.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if len(funcs) != 1:
        return None
    stmts = []
    for node in funcs[0].body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Pass):
            continue
        if not isinstance(node, ast.Assert):
            return None
        stmts.append(ast.unparse(node))
    return stmts


def node_source(lines: list[str], node: ast.stmt) -> str:
    """The source lines of a top-level ``node`` (decorators included) of ``"\n".join(lines)``."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[first - 1 : node.end_lineno])
