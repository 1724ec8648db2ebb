# expect: output_exceeded runtime_error
# Floods the results channel with bytes until the worker stops it.
import os


def add(a, b):
    while True:
        os.write(3, b"x" * 65536 + b"\n")
