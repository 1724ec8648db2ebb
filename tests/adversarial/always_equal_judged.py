# expect: failed
# task: adv/judged
# An object equal to everything, returned where the problem's own test code compares (a check
# with a loop): it passes only if that comparison ran on the object itself.
class _Any:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


def add(a, b):
    return _Any()
