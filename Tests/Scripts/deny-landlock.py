#!/usr/bin/env python3
"""Runs a command under a seccomp filter that refuses the Landlock system calls with EPERM, as
systemd-nspawn's default filter and some container runtimes do: the tests' stand-in for a host
where a job's child cannot be fully confined. Usage: deny-landlock.py PROGRAM [ARGUMENTS...]"""
import ctypes, os, platform, struct, sys

# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self: the same numbers on x86_64
# and on the generic table arm64 uses.
LANDLOCK_CALLS = (444, 445, 446)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1


def instruction(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    if len(sys.argv) < 2 or platform.machine() not in ("x86_64", "aarch64"):
        sys.exit(__doc__)
    program = [instruction(BPF_LD_W_ABS, 0, 0, 0)]  # the system call's number
    for index, call in enumerate(LANDLOCK_CALLS):
        program.append(instruction(BPF_JEQ_K, len(LANDLOCK_CALLS) - index, 0, call))
    program.append(instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    program.append(instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    code = b"".join(program)
    buffer = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    fprog = Program(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_SECCOMP): {os.strerror(ctypes.get_errno())}")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
