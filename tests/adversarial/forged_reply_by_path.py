# expect: runtime_error failed
# observed: tamper
# The right record written by opening the channel by its path (/proc/self/fd/3).
import json

_calls = [0]


def add(a, b):
    try:
        with open("/proc/self/fd/3", "wb", buffering=0) as fh:
            fh.write((json.dumps({"i": _calls[0], "v": a + b}) + "\n").encode())
    except OSError:
        pass
    _calls[0] += 1
    return a - b
