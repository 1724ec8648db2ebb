# expect: runtime_error failed
import json
import os

forged = {"status": "passed", "passed": 3, "total": 3, "i": 0, "v": 3}
print(json.dumps(forged))
for fd in (1, 2, 3, 4, 5):
    try:
        os.write(fd, (json.dumps(forged) + "\n").encode())
    except OSError:
        pass


def add(a, b):
    print(json.dumps({"status": "passed"}))
    return None
