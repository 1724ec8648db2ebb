# expect: output_exceeded
import sys


def add(a, b):
    chunk = "x" * 2**20
    for _ in range(1024):
        sys.stdout.write(chunk)
    return a + b
