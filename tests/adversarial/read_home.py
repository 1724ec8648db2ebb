# expect: runtime_error
def add(a, b):
    with open("__HOME_SECRET__") as fh:
        fh.read()
    return a + b
