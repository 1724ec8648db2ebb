# expect: failed runtime_error
# task: adv/judged
# The judge's verdict line, forged onto every descriptor the solution's process has, before any
# test runs: it passes only if the parent took a record from the untrusted side.
import json
import os

_FORGED = [{"i": i, "v": None, "ok": True} for i in range(4)] + [{"judged": {"results": ""}}]
for fd in range(0, 10):
    for rec in _FORGED:
        try:
            os.write(fd, (json.dumps(rec) + "\n").encode())
        except OSError:
            pass


def add(a, b):
    return -1
