# expect: failed
class Chameleon:
    def __hash__(self):
        return hash(3)

    def __eq__(self, other):
        return True


def add(a, b):
    return {Chameleon()}
