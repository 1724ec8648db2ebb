# expect: runtime_error
# A class of its own named MemoryError: it would be labelled memory_exceeded if the verdict
# trusted the name the solution gave its exception.
class MemoryError(Exception):  # noqa: A001
    pass


def add(a, b):
    raise MemoryError("out of memory, honestly")
