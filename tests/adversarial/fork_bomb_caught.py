# expect: timeout
# observed: processes
# A fork bomb that survives the process limit (it catches the error and forks again): every copy
# spins, starving the sample's own process. A model verdict within the test's limit, not a
# sandbox error after the parent gives up.
import os


def add(a, b):
    while True:
        try:
            os.fork()
        except OSError:
            pass
