# expect: failed
# observed: signals
import os
import signal


def add(a, b):
    for pid in (os.getppid(), 1):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.kill(-1, signal.SIGKILL)  # everything this uid may signal
    except OSError:
        pass
    return a - b
