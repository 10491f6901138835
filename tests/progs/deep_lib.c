/* Two frames inside a shared library: the stack of its allocation must
 * name both, then the program's frames below. "@line NAME" marks lines the
 * runtime tests look up. */
#include "deep_lib.h"
#include "common.h"

SITE static void* deep_lib_inner(size_t n) {
    void* p = malloc(n); /* @line deep_lib_inner */
    escape(p);
    return p;
}

SITE void* deep_lib_entry(size_t n) {
    void* p = deep_lib_inner(n); /* @line deep_lib_entry */
    escape(p);
    return p;
}
