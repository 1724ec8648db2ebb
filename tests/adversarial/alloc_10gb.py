# expect: memory_exceeded
def add(a, b):
    block = bytearray(10 * 2**30)
    return a + b + len(block) * 0
