// Linux calls Swift cannot make directly (variadic C functions). Nothing else belongs here.
#ifndef MEDIA_WORKER_CLINUX_SHIM_H
#define MEDIA_WORKER_CLINUX_SHIM_H
#include <sys/prctl.h>
#include <signal.h>

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent dies.
static inline int clinux_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }
#endif
