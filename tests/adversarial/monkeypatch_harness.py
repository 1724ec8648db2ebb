# expect: failed runtime_error
# observed: tamper
import builtins
import json
import sys

builtins.isinstance = lambda *a: True
json.dumps = lambda *a, **k: '{"i": 0, "passed": true, "status": "passed"}'
codec = sys.modules.get("codec")
if codec is not None:
    codec.encode = lambda value, _depth=0: {"status": "passed"}
    codec.Unencodable = type("Nope", (Exception,), {})
harness = sys.modules.get("__main__")
if harness is not None and hasattr(harness, "_emit"):
    harness._emit = lambda obj: None


def add(a, b):
    return a * 1000 + b
