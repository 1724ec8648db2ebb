# expect: runtime_error timeout memory_exceeded
# observed: processes
import os


def add(a, b):
    while True:
        os.fork()
