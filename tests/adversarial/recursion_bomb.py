# expect: runtime_error memory_exceeded timeout
import sys

sys.setrecursionlimit(10**8)


def deeper(n):
    return deeper(n + 1) + 1


def add(a, b):
    return deeper(0)
