# expect: timeout runtime_error
# Spinning threads until none can start, then spinning on: the sample's own threads starve it.
import threading


def _spin():
    while True:
        pass


def add(a, b):
    while True:
        try:
            threading.Thread(target=_spin, daemon=True).start()
        except RuntimeError:
            pass
