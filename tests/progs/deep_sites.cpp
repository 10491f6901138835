// deep_sites: allocation sites several calls deep, built -O2 without frame
// pointers and linked against Debian's libstdc++, so that only unwind tables
// can give whole stacks. Every site's stack must reach main (or the thread's
// start) with the right file:line at each frame; "@line NAME" marks them.
// Expected numbers: expect.h (DEEP_*).
//
// Usage: deep_sites [--wait]
#include <pthread.h>

#include <cstddef>
#include <new>

#include "common.h"
#include "deep_lib.h"
#include "expect.h"

extern "C" {
void* g_deep_keep[8];

SITE void* deep_level3(std::size_t n) {
    void* p = malloc(n);  // @line deep_level3
    escape(p);
    return p;
}

SITE void* deep_level2(std::size_t n) {
    void* p = deep_level3(n);  // @line deep_level2
    escape(p);
    return p;
}

SITE void* deep_level1(std::size_t n) {
    void* p = deep_level2(n);  // @line deep_level1
    escape(p);
    return p;
}
}  // extern "C"

namespace deep {
struct Node {
    char payload[DEEP_NEW_SIZE];
};

// Inlined into its caller: the allocation's return address lies in
// deep_inline_outer, and only debug info says it came from make_node.
__attribute__((always_inline)) inline Node* make_node() {
    return new Node;  // @line make_node
}
}  // namespace deep

extern "C" {
SITE void* deep_inline_outer(void) {
    deep::Node* n = deep::make_node();  // @line deep_inline_outer
    escape(n);
    return n;
}

SITE void* deep_via_lib(void) {
    void* p = deep_lib_entry(DEEP_LIB_SIZE);  // @line deep_via_lib
    escape(p);
    return p;
}

SITE void* deep_thread_site(void) {
    void* p = malloc(DEEP_THREAD_SIZE);  // @line deep_thread_site
    escape(p);
    return p;
}

SITE void* deep_thread_main(void*) {
    g_deep_keep[3] = deep_thread_site();  // @line deep_thread_main
    return nullptr;
}

SITE void run_deep_sites(void) {
    g_deep_keep[0] = deep_level1(DEEP_CHAIN_SIZE);  // @line run_deep_sites_chain
    g_deep_keep[1] = deep_inline_outer();           // @line run_deep_sites_inline
    g_deep_keep[2] = deep_via_lib();                // @line run_deep_sites_lib
    pthread_t t;
    TP_CHECK(pthread_create(&t, nullptr, deep_thread_main, nullptr) == 0);
    TP_CHECK(pthread_join(t, nullptr) == 0);
}
}  // extern "C"

int main(int argc, char** argv) {
    int wait = tp_has_arg(argc, argv, "--wait");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    run_deep_sites();  // @line main
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
