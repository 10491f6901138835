#include "procinfo/processes.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

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

SelfMeter::Sample SelfMeter::sample() {
    Sample s;
    if (auto st = read_proc_status(getpid(), nullptr)) s.rss_bytes = st->vm_rss;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s.cpu_seconds = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    auto now = std::chrono::steady_clock::now();
    if (last_at_ != std::chrono::steady_clock::time_point{}) {
        double wall = std::chrono::duration<double>(now - last_at_).count();
        if (wall > 0) s.cpu_percent = 100.0 * (s.cpu_seconds - last_cpu_) / wall;
    }
    last_cpu_ = s.cpu_seconds;
    last_at_ = now;
    return s;
}

void SelfMeter::restart() {
    sample();
    last_at_ = std::chrono::steady_clock::now();
}

}  // namespace memtop
