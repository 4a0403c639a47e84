// Linux calls Swift cannot make directly (variadic C functions, GNU extensions). Nothing else
// belongs here.
#ifndef MEDIA_WORKER_CLINUX_SHIM_H
#define MEDIA_WORKER_CLINUX_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent dies.
static inline int clinux_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }

/// pipe2(fds, O_CLOEXEC): a pipe no other concurrently spawned process can inherit.
static inline int clinux_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
#endif
