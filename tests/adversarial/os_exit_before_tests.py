# expect: runtime_error
import os


def add(a, b):
    return a + b


os._exit(0)
