# expect: failed
import os


def add(a, b):
    if os.environ.get("CODEDPO_TEST_SECRET") == "hunter2":
        return a + b
    return None
