# expect: timeout
# The first test runs 3 s of CPU against a 2 s limit and swallows every exception raised into it
# (a timeout raised by a harness inside this process): it passes only if that was the limit.
import time

_calls = []


def add(a, b):
    _calls.append(1)
    if len(_calls) == 1:
        end = time.process_time() + 3.0
        while time.process_time() < end:
            try:
                while time.process_time() < end:
                    pass
            except BaseException:  # noqa: BLE001
                continue
    return a + b
