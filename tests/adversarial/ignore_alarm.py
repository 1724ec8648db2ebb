# expect: timeout
# One slow test (3 s against the 2 s per-test limit) that ignores every signal it can and the
# other tests fast: it passes only if the per-test limit was enforced inside this process.
import signal
import time

for _sig in (signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGTERM, signal.SIGINT,
             signal.SIGXCPU, signal.SIGUSR1):
    try:
        signal.signal(_sig, signal.SIG_IGN)
    except (OSError, ValueError):
        pass
_calls = []


def add(a, b):
    _calls.append(1)
    if len(_calls) == 1:
        end = time.process_time() + 3.0  # 3 s of CPU: on a loaded machine too
        while time.process_time() < end:
            pass
    return a + b
