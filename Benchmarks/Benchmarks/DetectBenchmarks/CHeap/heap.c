#include "vigil_heap.h"
#if defined(__linux__)
#include <features.h>
#include <malloc.h>
#endif

#if defined(__GLIBC__)
// mallinfo2() describes the main arena only, and the benchmarks run on another thread: one
// arena for the whole process (set before any thread allocates) makes it describe every
// allocation. No benchmark here allocates from two threads at once, so nothing contends.
__attribute__((constructor)) static void vigil_one_arena(void) {
    mallopt(M_ARENA_MAX, 1);
}
#endif

size_t vigil_heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    // Small blocks in use plus blocks served by mmap (large buffers such as hash tables).
    return info.uordblks + info.hblkhd;
#else
    return 0;
#endif
}
