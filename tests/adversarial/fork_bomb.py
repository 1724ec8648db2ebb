# expect: runtime_error timeout memory_exceeded
import os


def add(a, b):
    while True:
        os.fork()
