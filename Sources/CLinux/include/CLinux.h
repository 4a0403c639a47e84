// What media-worker needs of Linux that Swift cannot call directly; implemented in clinux.c.
// This header includes only what its declarations need, with the C library's default feature
// macros, so it agrees with every other module's view of the C library.
#ifndef MEDIA_WORKER_CLINUX_H
#define MEDIA_WORKER_CLINUX_H
#include <spawn.h>

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent dies.
int clinux_set_parent_death_signal(int signal);

/// pipe2(fds, O_CLOEXEC): a pipe no other concurrently spawned process can inherit.
int clinux_pipe_cloexec(int fds[2]);

/// Makes a spawned process close every descriptor from `lowest` up before it runs (glibc 2.34+).
int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// Makes a spawned process start with no signal blocked and every signal at its default action,
/// whatever the spawner blocked or ignored (ignored signals and the mask survive exec: a daemon
/// that ignores SIGTERM to handle it itself would hand that on, and its child would never stop).
int clinux_spawn_reset_signals(posix_spawnattr_t *attributes);

/// mallopt(M_ARENA_MAX, arenas): glibc reserves 64 MiB of address space per thread arena; under an
/// address-space limit a few arenas are what real allocations need, not one per thread.
int clinux_limit_malloc_arenas(int arenas);

/// prctl(PR_SET_NO_NEW_PRIVS, 1): nothing this process runs can gain privileges (needed for an
/// unprivileged seccomp filter and Landlock).
int clinux_set_no_new_privileges(void);

/// prctl(PR_SET_DUMPABLE, 0): no core dumps, and /proc/<pid>/environ, mem and maps become root's,
/// so another process of the same user cannot read this one's secrets or memory.
int clinux_set_not_dumpable(void);

/// Whether this process is dumpable (1) or not (0).
int clinux_dumpable(void);

/// Installs a seccomp filter (after `clinux_set_no_new_privileges`) under which the calls an
/// untrusted decoder has no use for fail with EPERM: sockets, running programs, new processes
/// (threads are allowed), tracing or reading other processes, mounts and namespaces, kernel
/// keyrings, BPF, perf, userfaultfd, io_uring (whose operations seccomp cannot see) and truncate
/// by path (which Landlock governs only from its ABI 3). A call
/// from another architecture's table kills the process. Returns 0, or -1 with errno.
int clinux_seccomp_deny_escapes(void);

/// The kernel's Landlock ABI version (1 and up), or -1 with errno (EOPNOTSUPP: disabled, ENOSYS:
/// too old a kernel).
int clinux_landlock_abi(void);

/// Confines this process (after `clinux_set_no_new_privileges`) with Landlock: from now on it may
/// open only what lies beneath `readable` (read and execute) and `writable` (anything) paths.
/// Paths that do not exist are skipped. Returns the ABI version enforced, or -1 with errno.
int clinux_landlock_confine(
    const char *const *readable, int readable_count, const char *const *writable, int writable_count);
#endif
