#include <uv.h>
#include <sys/prctl.h>

/* Names the calling thread (at most 15 bytes are kept); prctl is variadic, so Swift calls this. */
static inline void lattica_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }
