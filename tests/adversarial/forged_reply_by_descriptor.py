# expect: runtime_error
# observed: tamper
# task: adv/asserts
# The right record written through a duplicate of the channel's descriptor (a check on the
# descriptor's number alone would miss it).
import json
import os

_calls = [0]


def add(a, b):
    fd = os.dup(3)
    os.write(fd, (json.dumps({"i": _calls[0], "v": a + b}) + "\n").encode())
    os.close(fd)
    _calls[0] += 1
    return a - b
