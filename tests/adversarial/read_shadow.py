# expect: runtime_error
# observed: read_hidden
def add(a, b):
    with open("/etc/shadow") as fh:
        fh.read()
    return a + b
