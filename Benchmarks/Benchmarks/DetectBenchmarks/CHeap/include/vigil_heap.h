// Heap statistics for DetectBenchmarks: glibc's mallinfo2() is not exported by Swift's Glibc module.
#ifndef VIGIL_HEAP_H
#define VIGIL_HEAP_H
#include <stddef.h>

/// Bytes of the heap in use (glibc: mallinfo2().uordblks; 0 elsewhere).
size_t vigil_heap_in_use(void);

#endif
