#include "kernel/libbpf_log.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

namespace memtop {

namespace {

bool g_verbose = false;
std::deque<std::string> g_tail;  // last libbpf warnings, for error messages
std::mutex g_tail_mutex;         // programs load from several threads at once

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (g_verbose) {
        // Verifier logs come as one message of many kilobytes: print whole.
        vfprintf(stderr, fmt, args);
        return 0;
    }
    if (level != LIBBPF_WARN) return 0;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, args);
    std::lock_guard<std::mutex> lock(g_tail_mutex);
    g_tail.emplace_back(buf);
    if (g_tail.size() > 4) g_tail.pop_front();
    return 0;
}

}  // namespace

void capture_libbpf_log(bool verbose) {
    g_verbose = verbose;
    libbpf_set_print(libbpf_log);
}

bool libbpf_verbose() {
    return g_verbose;
}

std::string libbpf_hint() {
    std::lock_guard<std::mutex> lock(g_tail_mutex);
    if (g_verbose || g_tail.empty()) return "";
    std::string last = g_tail.back();
    while (!last.empty() && last.back() == '\n') last.pop_back();
    return " (" + last + "; -v shows libbpf's whole log)";
}

namespace {
// Both kinds of link, closed from several threads (libbpf_log.h says why).
template <typename Handle>
void reset_in_parallel(std::vector<Handle>& handles, size_t serial_up_to) {
    if (handles.size() <= serial_up_to) {
        handles.clear();
        return;
    }
    std::vector<std::thread> workers;
    size_t nthreads = std::min<size_t>(handles.size(), 32);
    for (size_t t = 0; t < nthreads; t++)
        workers.emplace_back([&handles, t, nthreads] {
            for (size_t i = t; i < handles.size(); i += nthreads) handles[i].reset();
        });
    for (auto& w : workers) w.join();
    handles.clear();
}
}  // namespace

void destroy_links(std::vector<LinkPtr>& links) {
    reset_in_parallel(links, 2);
}

void close_links(std::vector<UniqueFd>& links) {
    reset_in_parallel(links, 1);
}

}  // namespace memtop
