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

void destroy_links(std::vector<LinkPtr>& links) {
    if (links.size() <= 2) {
        links.clear();
        return;
    }
    std::vector<std::thread> workers;
    size_t nthreads = std::min<size_t>(links.size(), 32);
    for (size_t t = 0; t < nthreads; t++)
        workers.emplace_back([&links, t, nthreads] {
            for (size_t i = t; i < links.size(); i += nthreads) links[i].reset();
        });
    for (auto& w : workers) w.join();
    links.clear();
}

void close_links(std::vector<UniqueFd>& links) {
    if (links.size() <= 1) {
        links.clear();
        return;
    }
    std::vector<std::thread> workers;
    size_t nthreads = std::min<size_t>(links.size(), 32);
    for (size_t t = 0; t < nthreads; t++)
        workers.emplace_back([&links, t, nthreads] {
            for (size_t i = t; i < links.size(); i += nthreads) links[i].reset();
        });
    for (auto& w : workers) w.join();
    links.clear();
}

}  // namespace memtop
