#include "procinfo/processes.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "procinfo/proc_file.h"
#include "procinfo/proc_status.h"

namespace memtop {

std::vector<int> list_pids() {
    std::vector<int> pids;
    DIR* d = opendir("/proc");
    if (!d) return pids;
    while (dirent* e = readdir(d)) {
        char* end;
        long v = strtol(e->d_name, &end, 10);
        if (*end == 0 && v > 0) pids.push_back(static_cast<int>(v));
    }
    closedir(d);
    return pids;
}

std::string comm_of(int pid) {
    FILE* f = fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "r");
    if (!f) return "?";
    char buf[64] = {};
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    std::string s(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

bool process_alive(int pid) {
    return kill(pid, 0) == 0 || errno == EPERM;
}

std::optional<ProcStat> read_proc_stat(int pid) {
    auto text = read_proc_file("/proc/" + std::to_string(pid) + "/stat", nullptr);
    if (!text) return std::nullopt;
    auto close = text->rfind(") ");
    if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
    // Field 3 (the state) on: utime and stime are fields 14 and 15.
    std::istringstream in(text->substr(close + 2));
    std::string field;
    ProcStat st;
    for (int i = 3; i <= 15 && (in >> field); i++) {
        if (i == 3) st.state = field[0];
        if (i == 14 || i == 15) st.cpu_ticks += std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) return st;
    }
    return std::nullopt;
}

namespace {
// user + system CPU seconds of `pid`, nullopt if gone.
std::optional<double> cpu_seconds_of(pid_t pid) {
    auto st = read_proc_stat(pid);
    if (!st) return std::nullopt;
    return double(st->cpu_ticks) / double(sysconf(_SC_CLK_TCK));
}
}  // namespace

SelfMeter::Sample SelfMeter::sample(const std::vector<pid_t>& helpers) {
    Sample s;
    if (auto st = read_proc_status(getpid(), nullptr)) s.rss_bytes = st->vm_rss, s.rss_anon_bytes = st->rss_anon;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s.cpu_seconds = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    std::map<pid_t, double> seen;
    for (pid_t h : helpers) {
        if (h <= 0) continue;
        auto cpu = cpu_seconds_of(h);
        if (!cpu) continue;
        seen[h] = *cpu;
        if (auto st = read_proc_status(h, nullptr)) s.rss_bytes += st->vm_rss, s.rss_anon_bytes += st->rss_anon;
    }
    for (const auto& [pid, cpu] : helper_cpu_)
        if (!seen.count(pid)) ended_helpers_cpu_ += cpu;  // it ended (a restarted worker)
    helper_cpu_ = std::move(seen);
    for (const auto& [pid, cpu] : helper_cpu_) s.cpu_seconds += cpu;
    s.cpu_seconds += ended_helpers_cpu_;
    auto now = std::chrono::steady_clock::now();
    if (last_at_ != std::chrono::steady_clock::time_point{}) {
        double wall = std::chrono::duration<double>(now - last_at_).count();
        if (wall > 0) s.cpu_percent = 100.0 * (s.cpu_seconds - last_cpu_) / wall;
    }
    last_cpu_ = s.cpu_seconds;
    last_at_ = now;
    return s;
}

void SelfMeter::restart(const std::vector<pid_t>& helpers) {
    sample(helpers);
    last_at_ = std::chrono::steady_clock::now();
}

}  // namespace memtop
