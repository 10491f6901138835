/* deep_lib: a shared library of the test's own, built without frame
 * pointers, that allocates on behalf of its caller (see deep_sites.cpp). */
#ifndef MEMTOP_TEST_DEEP_LIB_H
#define MEMTOP_TEST_DEEP_LIB_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void* deep_lib_entry(size_t n);
#ifdef __cplusplus
}
#endif
#endif
