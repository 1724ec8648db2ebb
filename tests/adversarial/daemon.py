# expect: failed
# observed: processes
import os
import time


def add(a, b):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:  # outlive the sample, then try to touch the host
                try:
                    open("__CANARY__", "w").write("daemon")
                except OSError:
                    pass
                time.sleep(0.05)
        os._exit(0)
    time.sleep(0.05)
    return a - b
