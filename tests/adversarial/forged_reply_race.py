# expect: runtime_error
# observed: tamper
# A thread races the harness's reply: on each call it writes the right value for this test
# (landing before the harness's own reply) and again for the test before (landing after the
# harness's reply to it); the function waits for it, then returns a wrong value.
import json
import os
import threading

_go = threading.Event()
_done = threading.Event()
_current = [0, 0, None]


def _racer():
    while True:
        _go.wait()
        _go.clear()
        i, value, previous = _current
        os.write(3, (json.dumps({"i": i, "v": value}) + "\n").encode())
        if previous is not None:
            os.write(3, (json.dumps({"i": i - 1, "v": previous}) + "\n").encode())
        _done.set()


threading.Thread(target=_racer, daemon=True).start()
_calls = []


def add(a, b):
    _current[:] = [len(_calls), a + b, _calls[-1] if _calls else None]
    _calls.append(a + b)
    _done.clear()
    _go.set()
    _done.wait(5)
    return -1
