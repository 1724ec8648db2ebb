"""A seccomp filter for the sandbox worker and everything it forks (stdlib only, via ctypes).

It refuses (EPERM) the system calls that create memory outside a process's address space, which
RLIMIT_AS does not count and which would outlive a sample: SysV shared memory, semaphores and
message queues (``shmget``, ``semget``, ``msgget``) and ``memfd_create``. POSIX shared memory
needs a writable ``/dev/shm``, which the sandbox does not give. Every system call of another
ABI (i386 through ``int 0x80``, x32) is refused too, since its numbers differ.

Only x86-64 and AArch64 are known; elsewhere :func:`install` returns False and the worker
reports that the filter is off.
"""

import ctypes
import errno
import os

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
# struct seccomp_data: int nr at offset 0, __u32 arch at offset 4.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06

ARCHES = {
    # machine: (AUDIT_ARCH_*, syscall numbers, ABI bit of foreign numbers on that arch)
    "x86_64": (0xC000003E, {"shmget": 29, "semget": 64, "msgget": 68, "memfd_create": 319},
               0x40000000),
    "aarch64": (0xC00000B7, {"shmget": 194, "semget": 190, "msgget": 186, "memfd_create": 279},
                None),
}  # fmt: skip
BLOCKED = ("shmget", "semget", "msgget", "memfd_create")


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]  # fmt: skip


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


def program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The BPF instructions ``(code, jt, jf, k)`` for ``machine``, or None if unknown."""
    if machine not in ARCHES:
        return None
    arch, numbers, foreign = ARCHES[machine]
    insns: list[list[int]] = [
        [_LD_W_ABS, 0, 0, 4],
        [_JEQ_K, 1, 0, arch],
        [_RET_K, 0, 0, RET_ERRNO | errno.ENOSYS],  # another ABI: refuse everything
        [_LD_W_ABS, 0, 0, 0],
    ]
    checks: list[list[int]] = []
    if foreign is not None:
        checks.append([_JGE_K, 0, 0, foreign])
    checks += [[_JEQ_K, 0, 0, numbers[name]] for name in BLOCKED]
    first = len(insns)
    insns += checks
    insns.append([_RET_K, 0, 0, RET_ALLOW])
    refuse = len(insns)
    insns.append([_RET_K, 0, 0, RET_ERRNO | errno.EPERM])
    for n in range(first, first + len(checks)):
        insns[n][1] = refuse - n - 1  # jump forward to "refuse" when the test holds
    return [tuple(i) for i in insns]


def install() -> bool:
    """Install the filter on this process (inherited by its children). True if it is on."""
    insns = program(os.uname().machine)
    if insns is None:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        array = (_Insn * len(insns))(*[_Insn(*i) for i in insns])
        prog = _Prog(len(insns), array)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0
    except (OSError, AttributeError):
        return False
