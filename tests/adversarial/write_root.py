# expect: runtime_error
# observed: write_outside
# Passes only if it could write outside its scratch space.
def add(a, b):
    for path in ("/pwned_by_codedpo", "/etc/pwned_by_codedpo", "__CALLER_DIR__/pwned_by_codedpo"):
        with open(path, "w") as fh:
            fh.write("pwned")
    return a + b
