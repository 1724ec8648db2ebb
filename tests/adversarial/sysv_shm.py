# expect: failed runtime_error
# observed: native
# 5 x 100 MB of SysV shared memory under a 1 GB address-space limit, touched, detached and left
# behind: it passes only if all of it was allocated (none of it counts in RLIMIT_AS).
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_PRIVATE, IPC_CREAT = 0, 0o1000
SIZE = 100 * 2**20


def _grab() -> int:
    got = 0
    for _ in range(5):
        ident = libc.shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0o600)
        if ident < 0:
            continue
        addr = libc.shmat(ident, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            continue
        ctypes.memset(addr, 1, SIZE)
        libc.shmdt(ctypes.c_void_p(addr))
        got += 1
    return got


def add(a, b):
    return a + b if _grab() == 5 else None
