# expect: output_exceeded
# A value whose text is larger than the channel back (48 MB against the corpus run's 32 MiB
# results cap, with a float in it, so it cannot travel as a digest): the model's own failure,
# never the sandbox's.
def add(a, b):
    return [0.5, "x" * 48_000_000]
