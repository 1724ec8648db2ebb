# expect: runtime_error
# observed: tamper
# A thread races the harness's reply: the function signals it and returns a wrong value at
# once, the thread writes the right one for the same test (either may land first).
import json
import os
import threading

_go = threading.Event()
_done = threading.Event()
_current = [0, 0]


def _racer():
    while True:
        _go.wait()
        _go.clear()
        i, value = _current
        os.write(3, (json.dumps({"i": i, "v": value}) + "\n").encode())
        _done.set()


threading.Thread(target=_racer, daemon=True).start()
_calls = [0]


def add(a, b):
    _current[:] = [_calls[0], a + b]
    _calls[0] += 1
    _go.set()
    return -1
