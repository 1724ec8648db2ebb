"""The results channel's framing rule, on the trusted side (codedpo.execution.verdicts).

What a solution's child reports is read in order: what it tried (audit lines, anywhere), one load
report, then one record per test in order. Anything else was written by the solution itself and
fails the sample as ``tamper`` (the sandbox-level attacks are in tests/adversarial/).
"""

from __future__ import annotations

import pytest

from codedpo.execution.verdicts import parse_results, program_reports

LOADED = '{"loaded": true}\n'
AUDIT = '{"audit": "processes"}\n'


def test_the_harness_reports_in_order_are_read():
    text = AUDIT + LOADED + '{"i": 0, "v": 3}\n' + AUDIT + '{"i": 1, "exc": ["E", "m", "E"]}\n'
    reports = parse_results(text)
    assert reports.tamper is None
    assert reports.by_index == {0: {"i": 0, "v": 3}, 1: {"i": 1, "exc": ["E", "m", "E"]}}


def test_a_span_starts_at_its_first_test():
    reports = parse_results(LOADED + '{"i": 5, "v": 1}\n{"i": 6, "v": 2}\n', start=5)
    assert reports.tamper is None and sorted(reports.by_index) == [5, 6]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"i": 0, "v": 3}\n' + LOADED + '{"i": 0, "v": 2}\n', "before the solution loaded"),
        (LOADED + '{"i": 0, "v": 3}\n{"i": 0, "v": 2}\n', "a second reply to test 0"),
        (LOADED + '{"i": 1, "v": 12}\n{"i": 0, "v": 2}\n', "a reply to test 1 before test 0"),
        (LOADED + '{"i": 0, "v": 3, "h": "x"}\n', "not a test's record"),
        (LOADED + '{"i": 0, "status": "passed"}\n', "not a test's record"),
        (LOADED + "xxxx\n", "not a report"),
        (LOADED + '{"i": 0, "v": 3}\n' + LOADED, "not a test's record"),
        ('{"syntax": "SyntaxError"}\n' + LOADED, "after the load report"),
        (LOADED + '{"i": 0, "v": 3}\n{"i": 1', "bytes outside the framing"),
        ('{"audit": "processes", "i": 0, "v": 3}\n' + LOADED, "before the solution loaded"),
    ],
)
def test_anything_else_on_the_channel_is_tamper(text, what):
    assert what in parse_results(text).tamper


def test_a_last_line_cut_by_a_kill_is_not_tamper():
    reports = parse_results(LOADED + '{"i": 0, "v": 3}\n{"i": 1, "v": [1, 2', cut=True)
    assert reports.tamper is None and list(reports.by_index) == [0]


def test_aprogram_reports_its_first_exception_and_nothing_else():
    first = '{"exc": ["ValueError", "x", "ValueError"]}\n'
    run = {"results": AUDIT + first + '{"exc": ["E", "", "E"]}\n'}
    syntax, report, tamper = program_reports(run)
    assert tamper is None and report["exc"][0] == "ValueError"
    assert program_reports({"results": '{"i": 0, "v": 1}\n'})[2] == "a line that is not a report"
