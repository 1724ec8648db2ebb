# expect: runtime_error
# observed: tamper
# task: adv/asserts
# A wrong function that writes the right record for each test onto the results channel itself,
# then returns its wrong value: it passes only if the parent took the solution's record.
import json
import os

_calls = [0]


def add(a, b):
    i = _calls[0]
    _calls[0] += 1
    os.write(3, (json.dumps({"i": i, "v": a + b}) + "\n").encode())
    return a * b
