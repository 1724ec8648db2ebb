# expect: runtime_error
# observed: tamper
# task: adv/judged
# Serving the judge's calls, the function writes a reply of its own (the right value) before
# returning a wrong one: two replies to one call.
import json
import os


def add(a, b):
    os.write(3, (json.dumps({"v": a + b}) + "\n").encode())
    return a * b
