# expect: runtime_error
# observed: read_hidden
def add(a, b):
    with open("__HOME_SECRET__") as fh:
        fh.read()
    return a + b
