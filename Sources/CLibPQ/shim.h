// libpq's client header. Nothing else belongs here: the wrapper lives in Sources/Queue.
#ifndef MEDIA_WORKER_CLIBPQ_SHIM_H
#define MEDIA_WORKER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
