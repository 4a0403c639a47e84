// Linux calls Swift cannot make directly (variadic C functions, GNU extensions, BPF and Landlock
// structures built from macros). Nothing else belongs here. Compiled as C with _GNU_SOURCE here,
// and not in the header: a module whose headers see the C library with other feature macros than
// Foundation's and Dispatch's do (fd_set's members differ) cannot be imported beside them.
#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int clinux_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }

int clinux_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

int clinux_spawn_reset_signals(posix_spawnattr_t *attributes) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if (posix_spawnattr_setsigmask(attributes, &none) != 0) return -1;
    if (posix_spawnattr_setsigdefault(attributes, &all) != 0) return -1;
    return posix_spawnattr_setflags(attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

int clinux_limit_malloc_arenas(int arenas) { return mallopt(M_ARENA_MAX, arenas); }

int clinux_set_no_new_privileges(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

int clinux_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

int clinux_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }

#if defined(__x86_64__)
#define CLINUX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CLINUX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define CLINUX_DENY(nr)                                                                            \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                               \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

int clinux_seccomp_deny_escapes(void) {
#ifdef CLINUX_AUDIT_ARCH
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CLINUX_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        // clone: a thread (CLONE_THREAD) is fine, a new process is not.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        // clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc use clone.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        CLINUX_DENY(__NR_socket), CLINUX_DENY(__NR_socketpair), CLINUX_DENY(__NR_connect),
        CLINUX_DENY(__NR_bind), CLINUX_DENY(__NR_listen), CLINUX_DENY(__NR_accept), CLINUX_DENY(__NR_accept4),
        CLINUX_DENY(__NR_execve), CLINUX_DENY(__NR_execveat),
#ifdef __NR_fork
        CLINUX_DENY(__NR_fork), CLINUX_DENY(__NR_vfork),
#endif
        CLINUX_DENY(__NR_ptrace), CLINUX_DENY(__NR_process_vm_readv), CLINUX_DENY(__NR_process_vm_writev),
        CLINUX_DENY(__NR_kcmp), CLINUX_DENY(__NR_pidfd_getfd), CLINUX_DENY(__NR_mount), CLINUX_DENY(__NR_umount2),
        CLINUX_DENY(__NR_pivot_root), CLINUX_DENY(__NR_chroot), CLINUX_DENY(__NR_unshare), CLINUX_DENY(__NR_setns),
        CLINUX_DENY(__NR_keyctl), CLINUX_DENY(__NR_add_key), CLINUX_DENY(__NR_request_key), CLINUX_DENY(__NR_bpf),
        CLINUX_DENY(__NR_perf_event_open), CLINUX_DENY(__NR_userfaultfd), CLINUX_DENY(__NR_io_uring_setup),
        CLINUX_DENY(__NR_io_uring_enter), CLINUX_DENY(__NR_io_uring_register),
        CLINUX_DENY(__NR_open_by_handle_at), CLINUX_DENY(__NR_name_to_handle_at),
        CLINUX_DENY(__NR_init_module), CLINUX_DENY(__NR_finit_module), CLINUX_DENY(__NR_delete_module),
        CLINUX_DENY(__NR_kexec_load), CLINUX_DENY(__NR_mknodat),
        // truncate by path: Landlock governs it only from ABI 3 (Linux 6.2); ftruncate stays.
        CLINUX_DENY(__NR_truncate),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])), .filter = filter};
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

// Landlock rights newer than Debian 12's kernel headers.
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

int clinux_landlock_abi(void) {
    return (int)syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
}

int clinux_landlock_confine(
    const char *const *readable, int readable_count, const char *const *writable, int writable_count) {
    int abi = clinux_landlock_abi();
    if (abi < 1) return -1;
    __u64 handled = (1ULL << 13) - 1;  // ABI 1: LANDLOCK_ACCESS_FS_EXECUTE … MAKE_SYM
    if (abi >= 2) handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    const __u64 file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                              LANDLOCK_ACCESS_FS_READ_FILE | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
    const __u64 read_rights =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    struct landlock_ruleset_attr attributes = {.handled_access_fs = handled};
    int ruleset = (int)syscall(__NR_landlock_create_ruleset, &attributes, sizeof(attributes), 0);
    if (ruleset < 0) return -1;
    for (int position = 0; position < readable_count + writable_count; position++) {
        int is_writable = position >= readable_count;
        const char *path = is_writable ? writable[position - readable_count] : readable[position];
        int descriptor = open(path, O_PATH | O_CLOEXEC);
        if (descriptor < 0) continue;
        struct stat status;
        __u64 allowed = is_writable ? handled : read_rights;
        if (fstat(descriptor, &status) == 0 && !S_ISDIR(status.st_mode)) allowed &= file_rights;
        struct landlock_path_beneath_attr rule = {.allowed_access = allowed, .parent_fd = descriptor};
        long added = syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
        int saved = errno;
        close(descriptor);
        if (added < 0) {
            close(ruleset);
            errno = saved;
            return -1;
        }
    }
    long restricted = syscall(__NR_landlock_restrict_self, ruleset, 0);
    int saved = errno;
    close(ruleset);
    errno = saved;
    return restricted < 0 ? -1 : abi;
}
