# expect: runtime_error
def add(a, b):
    with open("/etc/shadow") as fh:
        fh.read()
    return a + b
