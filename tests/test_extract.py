"""Code extraction from realistic chat responses."""

from __future__ import annotations

import ast
import json

import pytest

from codedpo.sampling.extract import extract_code, has_code, main, names_tests_use


def run(code: str, entry: str):
    """Execute extracted code and return the entry point (proves it is runnable as extracted)."""
    namespace: dict = {}
    exec(compile(code, "<extracted>", "exec"), namespace)  # noqa: S102 - our own test strings
    return namespace[entry]


def test_python_fence_with_chatter_around() -> None:
    response = (
        "Sure! Here's a Python function that solves the problem:\n\n"
        "```python\n"
        "def add_two(a, b):\n"
        "    return a + b\n"
        "```\n\n"
        "This function simply returns the sum of `a` and `b`."
    )
    code = extract_code(response, "add_two")
    assert code == "def add_two(a, b):\n    return a + b\n"
    assert run(code, "add_two")(2, 3) == 5


@pytest.mark.parametrize("tag", ["py", "python3", "Python", ""])
def test_fence_tags(tag: str) -> None:
    response = f"Solution:\n```{tag}\ndef sq(x):\n    return x * x\n```\n"
    assert run(extract_code(response, "sq"), "sq")(4) == 16


def test_tilde_fence_and_indented_fence_in_list() -> None:
    response = (
        "1. First define the function:\n\n   ```python\n   def neg(x):\n       return -x\n   ```\n"
    )
    assert run(extract_code(response, "neg"), "neg")(3) == -3
    assert run(extract_code("~~~python\ndef one():\n    return 1\n~~~", "one"), "one")() == 1


def test_closing_fence_on_last_code_line() -> None:
    # The form docs/formats.md itself uses.
    code = extract_code("```python\ndef add_two(a, b): return a + b```", "add_two")
    assert run(code, "add_two")(1, 1) == 2


def test_prunes_demo_code_keeps_dependencies() -> None:
    response = """Here is my solution.

```python
import math
import unittest
from typing import List

MOD = 10**9 + 7
CACHE = {}


class Counter:
    def __init__(self):
        self.n = 0


def _helper(xs: List[int]) -> int:
    return sum(math.floor(x) for x in xs) % MOD


def solve(xs: List[int]) -> int:
    c = Counter()
    c.n = _helper(xs)
    return c.n


def unrelated():
    return 42


print(solve([1.5, 2.5]))
assert solve([1, 2]) == 3
solve([3])


class TestSolve(unittest.TestCase):
    def test_it(self):
        self.assertEqual(solve([1]), 1)


if __name__ == "__main__":
    unittest.main()
```

Let me know if you need anything else!"""
    code = extract_code(response, "solve")
    tree = ast.parse(code)
    top = [type(n).__name__ + ":" + getattr(n, "name", "") for n in tree.body]
    names = {getattr(n, "name", None) for n in tree.body}
    assert {"solve", "_helper", "Counter"} <= names
    assert "unrelated" not in names and "TestSolve" not in names
    assert "import math" in code and "from typing import List" in code and "MOD = " in code
    assert "import unittest" not in code and "CACHE" not in code
    assert "print(" not in code and "assert " not in code and "__main__" not in code
    assert not any(t.startswith("Expr") for t in top)
    assert run(code, "solve")([1.5, 2.5]) == 3


def test_keeps_recursion_limit_and_future_import() -> None:
    response = (
        "```python\nfrom __future__ import annotations\nimport sys\n"
        "sys.setrecursionlimit(10000)\n\n"
        "def depth(n: int) -> int:\n    return 0 if n == 0 else 1 + depth(n - 1)\n\n"
        "print(depth(5000))\n```"
    )
    code = extract_code(response, "depth")
    assert "sys.setrecursionlimit(10000)" in code and "import sys" in code
    assert code.startswith("from __future__ import annotations")
    assert "print(" not in code


def test_several_blocks_prefer_the_one_defining_entry_point() -> None:
    response = (
        "You can test it like this:\n```python\nfrom solution import is_even\n"
        "print(is_even(4))\n```\n\nThe implementation:\n"
        "```python\ndef is_even(n):\n    return n % 2 == 0\n```\n"
        "Shell:\n```bash\npython solution.py\n```"
    )
    code = extract_code(response, "is_even")
    assert "from solution" not in code and "print(" not in code
    assert run(code, "is_even")(4) is True


def test_improved_version_last_block_wins() -> None:
    response = (
        "A naive approach:\n```python\ndef fib(n):\n"
        "    return n if n < 2 else fib(n-1) + fib(n-2)\n"
        "```\nAn improved version:\n```python\ndef fib(n):\n    a, b = 0, 1\n"
        "    for _ in range(n):\n        a, b = b, a + b\n    return a\n```"
    )
    code = extract_code(response, "fib")
    assert code.count("def fib") == 1 and "for _ in range(n)" in code
    assert run(code, "fib")(30) == 832040


def test_helpers_spread_over_blocks_are_joined() -> None:
    response = (
        "First a helper:\n```python\nimport re\n\n"
        "def words(s):\n    return re.findall(r'\\w+', s)\n"
        "```\nThen the main function:\n```python\ndef count_words(s):\n    return len(words(s))\n"
        "```\nExample:\n```python\nprint(count_words('a b c'))  # 3\n```"
    )
    code = extract_code(response, "count_words")
    assert "import re" in code and "def words" in code and "print(" not in code
    assert run(code, "count_words")("hello, big world") == 3


def test_unfenced_code_with_chatter() -> None:
    response = (
        "Here is the function you asked for:\n\n"
        "def mul(a, b):\n"
        "    # multiply\n"
        "    return a * b\n\n"
        "print(mul(2, 3))\n\n"
        "Explanation: the function multiplies its two arguments and returns the result."
    )
    code = extract_code(response, "mul")
    assert code == "def mul(a, b):\n    # multiply\n    return a * b\n"


def test_unfenced_plain_code() -> None:
    response = "def inc(x):\n    return x + 1\n"
    assert extract_code(response, "inc") == response


def test_unterminated_fence_cut_in_demo_code() -> None:
    # Generation stopped by max tokens in the example after a complete solution.
    response = (
        "```python\ndef rev(s):\n    return s[::-1]\n\n\n# Test the function\n"
        "print(rev('abc'))\nprint(rev('hel"
    )
    code = extract_code(response, "rev")
    assert run(code, "rev")("abc") == "cba"


def test_unterminated_fence_cut_inside_entry_point_is_not_truncated() -> None:
    # A half-written function must not become a shorter function that runs; the helper before
    # it survives and the executor reports the missing entry point.
    response = (
        "```python\ndef helper(x):\n    return x\n\ndef solve(xs):\n    total = 0\n"
        "    for x in xs:\n        total += helper(x"
    )
    code = extract_code(response, "solve")
    assert "def solve" not in code
    assert "def helper" in code


def test_nothing_parses_returns_best_effort_text() -> None:
    response = "Here:\n```python\ndef f(x)\n    return x +\n```\nDone."
    code = extract_code(response, "f")
    assert code == "def f(x)\n    return x +\n"
    with pytest.raises(SyntaxError):
        ast.parse(code)


def test_no_code_at_all_is_no_code_and_broken_code_is_handed_over() -> None:
    """Prose alone gives no code (the executor's ``no_code`` verdict); text with a line shaped
    like a statement that does not parse is the model's broken code (a ``syntax_error``)."""
    for prose in ("I'm sorry, I cannot help with that request, it is unclear.",
                  "Sure! The answer loops over the list and returns the sum.\n\nHope it helps.",
                  "First, for each item in the list we add it.", "", "  \n"):  # fmt: skip
        assert extract_code(prose, "f") == "" and not has_code(prose), prose
    for broken in ("def f(x) return x", "Here it is:\nfor i in range(3) print(i)",
                   "result = [1, 2", "return x +"):  # fmt: skip
        assert extract_code(broken, "f") == broken.strip() + "\n" and has_code(broken), broken
    assert has_code("```\nno idea\n```")  # a fenced block is code, even when it fails


def test_entry_point_missing_strips_noise_only() -> None:
    response = (
        "```python\nimport math\n\ndef area(r):\n    return math.pi * r * r\n\nprint(area(1))\n```"
    )
    code = extract_code(response, "circle_area")
    assert "def area" in code and "import math" in code and "print(" not in code


def test_stdio_program_without_entry_point() -> None:
    response = (
        "Read the input and print twice the number:\n```python\nn = int(input())\nprint(n * 2)\n"
        "```\nSample input:\n```text\n3\n```\nSample output:\n```\n6\n```"
    )
    assert extract_code(response, None) == "n = int(input())\nprint(n * 2)\n"


def test_stdio_program_prefers_defining_block_over_usage() -> None:
    response = (
        "```python\nimport sys\n\ndef main():\n    data = sys.stdin.read().split()\n"
        "    print(sum(map(int, data)))\n\nmain()\n```\nRun it with:\n```python\nmain()\n```"
    )
    code = extract_code(response, None)
    # The program block alone: its own call of main() once, not the usage block's second one.
    assert code.count("\nmain()") == 1 and code.rstrip().endswith("main()")
    assert code.startswith("import sys")


def test_codellama_python_tags() -> None:
    response = (
        "[PYTHON]\ndef double(x):\n    return 2 * x\n[/PYTHON]\n[TESTS]\nassert double(2) == 4"
    )
    assert run(extract_code(response, "double"), "double")(5) == 10


def test_cli_fills_solution(tmp_path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"task_id": "t/1", "entry_point": "f"}) + "\n")
    samples = tmp_path / "raw.jsonl"
    raw = "```python\ndef f():\n    return 1\nprint(f())\n```"
    samples.write_text(json.dumps({"task_id": "t/1", "sample_id": "t/1/0", "raw": raw}) + "\n")
    out = tmp_path / "samples.jsonl"
    assert main(["--problems", str(problems), "--samples", str(samples), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["solution"] == "def f():\n    return 1\n" and rec["raw"] == raw


def test_definitions_the_tests_use_are_kept_besides_the_entry_point():
    # Mbpp/367: the test setup builds trees from the solution's own Node class, which the entry
    # point never mentions.
    tests = {
        "kind": "assert",
        "setup": "root = Node(1)\nroot.left = Node(2)\n",
        "asserts": ["assert is_balanced(root) == True"],
    }
    assert names_tests_use(tests) == {"Node", "is_balanced"}  # root is the tests' own
    response = (
        "```python\nclass Node:\n    def __init__(self, data):\n        self.data = data\n"
        "        self.left = self.right = None\n\n\ndef height(r):\n"
        "    return 0 if r is None else 1 + max(height(r.left), height(r.right))\n\n\n"
        "def is_balanced(r):\n"
        "    return r is None or abs(height(r.left) - height(r.right)) < 2\n\n\n"
        "root = Node(5)\nprint(is_balanced(root))\n```"
    )
    code = extract_code(response, "is_balanced", names_tests_use(tests))
    assert "class Node" in code and "def height" in code
    assert "root = Node(5)" not in code and "print(" not in code  # the model's demo stays out
    assert "class Node" not in extract_code(response, "is_balanced")


def test_what_extraction_rescues_beyond_sanitize_is_named():
    from codedpo.sampling.extract import extract

    two = ("First a helper:\n```python\ndef double(x):\n    return 2 * x\n```\n"
           "Then the answer:\n```python\ndef f(x):\n    return double(x) + 1\n```\n")  # fmt: skip
    code, rescued = extract(two, "f")
    assert "def double" in code and rescued == ["joined_blocks"]
    # One block holds everything the answer needs: nothing rescued, even with a usage block.
    one = ("```python\ndef f(x):\n    return x + 1\n```\nUsage:\n```python\nprint(f(2))\n```\n")
    assert extract(one, "f") == ("def f(x):\n    return x + 1\n", [])
