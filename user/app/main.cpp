// memtop: command line -> Session. Every user-caused failure ends here as one
// "memtop: ..." line on stderr and a documented exit status.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include "app/html_run.h"
#include "app/option_checks.h"
#include "app/private_allocator.h"
#include "app/report_query.h"
#include "app/session.h"
#include "attach/elf_image.h"
#include "attach/placement.h"
#include "model/sampling.h"
#include "procinfo/proc_maps.h"
#include "record/recording.h"
#include "record/report_codec.h"
#include "util/errors.h"
#include "util/exclusive_file.h"
#include "views/tui/screen.h"

using namespace memtop;

namespace {

std::vector<int> parse_pids(const std::string& list) {
    std::vector<int> pids;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        long v = strtol(item.c_str(), &end, 10);
        if (item.empty() || *end || v <= 0 || v > 0x3fffffff)
            throw MemtopError(kExitUsage, "-p " + list + ": '" + item + "' is not a process id");
        pids.push_back(static_cast<int>(v));
    }
    return pids;
}

// `memtop --probes FILE`: where each allocator probe would go, and why.
int print_probe_plan(const std::string& path) {
    auto img = ElfImage::open(path);
    for (const auto& s : plan_probes(*img)) {
        if (!s.forwards_to.empty())
            printf("%-40s not probed: jumps to %s\n", s.symbol.c_str(), s.forwards_to.c_str());
        else if (!s.not_traced.empty())
            printf("%-40s not probed: %s\n", s.symbol.c_str(), s.not_traced.c_str());
        else if (!s.return_sites.empty())
            printf("%-40s +0x%-4llx %-10s %s  (+%zu return sites)\n", s.symbol.c_str(),
                   (unsigned long long)s.insn_offset, s.emulated ? "emulated" : "stepped", s.instruction.c_str(),
                   s.return_sites.size());
        else
            printf("%-40s +0x%-4llx %-10s %s%s\n", s.symbol.c_str(), (unsigned long long)s.insn_offset,
                   s.emulated ? "emulated" : "stepped", s.instruction.c_str(), s.has_return ? "  (+return)" : "");
    }
    return 0;
}

// One line for a bad command line, naming the option as the user can type
// it (-d, not CLI11's --interval) and what it takes.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
    std::string msg = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
        std::string extras;
        for (const auto& arg : app.remaining())
            if (arg != "--") extras += (extras.empty() ? "" : " ") + arg;
        bool option = !extras.empty() && extras[0] == '-';
        return (option ? "unknown option " : "unexpected argument ") + extras +
               " (memtop --help lists the options; -- CMD runs a command)";
    }
    if (dynamic_cast<const CLI::ValidationError*>(&e)) {
        // "--interval: must be ..." -> "-d: must be ..."
        auto colon = msg.find(": ");
        if (colon != std::string::npos)
            for (const CLI::Option* o : app.get_options()) {
                if (o->get_name() != msg.substr(0, colon) || o->get_snames().empty()) continue;
                return "-" + o->get_snames()[0] + msg.substr(colon);
            }
        return msg;
    }
    if (dynamic_cast<const CLI::ConversionError*>(&e)) {
        // "Could not convert: --max-allocs = 5000000000": valid, too big
        const std::string head = "Could not convert: ";
        auto eq = msg.find(" = ");
        if (msg.rfind(head, 0) == 0 && eq != std::string::npos)
            return msg.substr(head.size(), eq - head.size()) + ": " + msg.substr(eq + 3) +
                   " is out of range (memtop --help gives its type)";
    }
    // CLI11's own texts, on one line.
    for (auto& c : msg)
        if (c == '\n') c = ' ';
    return msg + " (memtop --help lists the options)";
}

// The live screen, titled with what memtop traces.
std::unique_ptr<View> make_screen(const Options& opt) {
    tui::ScreenOptions so;
    so.color = opt.color;
    so.sort = tui::Column::Heap;
    if (!opt.command.empty()) {
        so.mode = "command " + opt.command[0];
        so.shares_terminal = true;
    } else if (!opt.pids.empty()) {
        so.mode = "pid";
        for (size_t i = 0; i < opt.pids.size(); i++) so.mode += (i ? "," : " ") + std::to_string(opt.pids[i]);
    } else if (opt.heap_all) {
        so.mode = "--heap-all";
    } else if (!opt.cgroup.empty()) {
        so.mode = "cgroup " + opt.cgroup;
    } else if (!opt.container.empty()) {
        so.mode = "container " + opt.container;
    } else {
        so.mode = "system view";
        so.sort = tui::Column::Rss;
    }
    return std::make_unique<tui::Screen>(std::move(so));
}

// `memtop report FILE`: a recording's last report, as the live run printed
// it, and its exports. No root, no BPF.
int report_main(int argc, char** argv) {
    std::string file;
    bool json = false;
    ExportFiles exports;
    ReportQuery query;
    CLI::App app{"memtop report: print a recording's last report (as the live run printed it)"};
    app.add_option("file", file, "a file written by memtop --record")->required();
    app.add_flag("--json", json, "the report as one JSON object (as memtop --json prints it)");
    app.add_option("--pprof", exports.pprof, "write its heap stacks to OUT as a gzip'd pprof profile");
    app.add_option("--folded", exports.folded, "write its heap stacks to OUT as folded stacks");
    app.add_option("--html", exports.html,
                   "write the whole recording to OUT as one self-contained HTML report (charts, flame graphs; "
                   "opened on the chosen report, minus --diff's or --diff-from's base)");
    app.add_option("--at", query.at,
                   "the report made at or last before TIME: seconds since the recording's start, or RFC 3339")
        ->type_name("TIME");
    app.add_option("--peak", query.peak,
                   "the report that saw PID's heap highest, nearest its peak (without PID: of the process "
                   "whose heap went highest)")
        ->expected(0, 1)
        ->type_name("[PID]");
    bool local_sources = false;
    app.add_flag("--local-sources", local_sources,
                 "with a report made with --lines: print each line's source text from the path the recording "
                 "names, read on this host (off: that path is the recording host's)");
    app.add_option("--peak-rss", query.peak_rss,
                   "the report that saw PID's resident memory (RSS) highest, nearest its peak (without PID: "
                   "of the process whose RSS went highest)")
        ->expected(0, 1)
        ->type_name("[PID]");
    app.add_option("--peak-python", query.peak_python,
                   "the report that saw PID's Python domain (--python-objects) highest, nearest its peak "
                   "(without PID: of the process whose Python domain went highest)")
        ->expected(0, 1)
        ->type_name("[PID]");
    app.add_option("--diff", query.diff,
                   "print the report minus BASE's last report (another recording): per stack, the change in "
                   "outstanding bytes and allocations, largest growth first; --pprof and --html write it")
        ->type_name("BASE");
    app.add_option("--diff-from", query.diff_from,
                   "the same against this recording's report at or before TIME (seconds since its start, or "
                   "RFC 3339)")
        ->type_name("TIME");
    app.add_option("--plot", query.plot,
                   "also draw the recording's memory over time per process (heap, RSS, the Python domain, the peaks "
                   "marked) as an "
                   "SVG in OUT")
        ->type_name("OUT");
    app.footer(
        "Exit status: 0 ok; 1 the file is truncated or corrupt (what could be read is shown); 2 usage, or "
        "not a recording.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : kExitUsage;
    }
    try {
        check_export_files(exports);
        check_report_query(query, exports);
        check_output_path("--plot", query.plot);
        Recording rec = read_recording(file);
        std::optional<ChosenReport> chosen = choose_report(rec, file, query);
        // One line, whatever went wrong.
        if (!rec.problem.empty())
            fprintf(stderr, "memtop: read recording %s: %s; %s\n", file.c_str(), rec.problem.c_str(),
                    chosen ? ("showing report " + std::to_string(chosen->number) + " of the " +
                              std::to_string(chosen->reports) + " whole reports")
                                 .c_str()
                           : "no whole report in what could be read");
        else if (!chosen)
            fprintf(stderr, "memtop: %s holds no report (the run ended before its first one)\n", file.c_str());
        if (!chosen) return kExitFailure;
        // A run's summary (its last report with the processes that ended
        // before it), as printed live; --diff BASE compares two runs'
        // summaries. --diff-from compares two moments of one run as made.
        if (query.diff_from.empty()) add_ended_earlier(rec, *chosen);
        chosen->report.read_line_sources = local_sources;
        const Report& last = chosen->report;
        if (!query.plot.empty()) write_plot(rec, file, query.plot);
        // --html: the whole recording, opened on the chosen report (minus
        // --diff-from's, or --diff BASE's last report).
        auto html = [&](std::optional<int64_t> base_ns, const std::optional<HtmlDiff>& diff) {
            if (exports.html.empty()) return;
            HtmlPage page = html_page_from_recording(rec, file, chosen->time_ns, base_ns);
            if (diff) page.set_diff(*diff);
            write_html_file(exports.html, page);
        };
        if (query.diffing()) {
            std::optional<HtmlDiff> diff;
            const int64_t base_ns = show_diff(rec, file, *chosen, query, json, exports, &diff);
            html(query.diff_from.empty() ? std::nullopt : std::optional<int64_t>(base_ns), diff);
            return rec.problem.empty() ? kExitOk : kExitFailure;
        }
        PrintView(json).show(last);
        write_export_files(last, exports);
        html(std::nullopt, std::nullopt);
        return rec.problem.empty() ? kExitOk : kExitFailure;
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        return kExitFailure;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "report") return report_main(argc - 1, argv + 1);
    Options opt;
    std::string pid_list, probes_file;
    CLI::App app{"memtop: heap allocations of running programs, per call stack, traced with eBPF"};
    app.set_version_flag("--version", "memtop " MEMTOP_VERSION);  // the project's, as the package says
    app.add_option("-p,--pid", pid_list, "trace these processes (PID[,PID...])")->check(not_empty("a process id"));
    app.add_flag("--heap-all", opt.heap_all, "trace every process on the host (every allocation takes a trap)");
    app.add_option("--cgroup", opt.cgroup,
                   "trace every process in this cgroup (v2 path, e.g. system.slice/foo.service), also later ones")
        ->check(not_empty("a cgroup path"));
    app.add_option("--container", opt.container,
                   "trace every process of this container (its id, or a unique prefix), also later ones")
        ->check(not_empty("a container id"));
    app.add_option("-d,--interval", opt.interval, "seconds between reports (at least 0.1)")
        ->check(seconds_at_least(kMinInterval, "must be at least 0.1 seconds"))
        ->capture_default_str();
    app.add_option("-T,--top", opt.top, "stacks per report (heap stacks in --sort's order)")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--min-age", opt.min_age,
                   "heap stacks count only blocks at least SEC old (memleak's -o), and each gets its age "
                   "histogram (0: the histogram alone); walks the whole allocation table every report")
        ->check(seconds_or_zero());
    std::string sort_name = "outstanding";
    app.add_option("--sort", sort_name,
                   "heap stacks by: outstanding (bytes not freed: leaks), allocated (bytes allocated in all), "
                   "allocations (count in all), temporary (allocations freed before the thread's next one)")
        ->check(CLI::IsMember({"outstanding", "allocated", "allocations", "temporary"}))
        ->capture_default_str();
    app.add_flag("--json", opt.json,
                 "one JSON object per report on stdout (NDJSON); -- CMD then prints on stderr unless -o is given");
    app.add_option("-o,--output", opt.output, "write the reports to FILE instead of stdout")
        ->check(not_empty("a file name"));
    app.add_flag("-b,--batch", opt.batch, "print reports, never the live screen, even on a terminal");
    app.add_option("-n,--iterations", opt.iterations, "stop after N reports (the last one is the final report)")
        ->check(positive_count())
        ->default_str("none: until stopped");
    bool no_color = false;
    app.add_flag("--no-color", no_color, "draw the live screen without colour (so does NO_COLOR in the environment)");
    app.add_option("--duration", opt.duration, "stop after this many seconds")
        ->check(positive_seconds())
        ->default_str("none: until stopped");
    app.add_option("--max-allocs", opt.sizes.allocs, "live allocations tracked at once")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--max-stacks", opt.sizes.stacks, "distinct stacks kept")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--max-aggs", opt.sizes.aggs, "(process, stack) pairs kept")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--max-procs", opt.sizes.procs, "processes tracked at once")
        ->check(positive_count())
        ->capture_default_str();
    app.add_flag("--compat-bpf", opt.compat_bpf,
                 "load the BPF build for kernels before 5.12 (chosen by itself there; this forces it)");
    app.add_option("--max-unwind-rows", opt.sizes.unwind_rows,
                   "unwind-table rows kept in the kernel, all files together (8 bytes each)")
        ->check(positive_count())
        ->capture_default_str();
    app.add_flag("--frame-pointers-only", opt.frame_pointers_only,
                 "walk stacks by frame pointers alone (cheaper; stacks stop at code built without them)");
    app.add_option("--lines", opt.lines,
                   "for source file FILE (a path or its trailing part), each line's outstanding and allocated "
                   "bytes and allocations")
        ->check(not_empty("a source file"));
    CLI::Option* sample_opt =
        app.add_option("--sample", opt.sample,
                       "heap: record allocations sampled every BYTES allocated on average (a Poisson process over "
                       "bytes; unsampled calls take no stack walk); every heap figure is then an unbiased "
                       "estimate, marked as one. Default: exact (0) for -p and -- CMD, 524288 for --heap-all, "
                       "--cgroup and --container")
            ->check(byte_count());
    app.add_flag("--kernel-sampling", opt.kernel_sampling,
                 "with --sample and -- CMD: sample in memtop's probes on the allocator instead of preloading "
                 "memtop's sampler library into CMD (which makes unsampled calls take no trap)");
    app.add_flag("--exact", opt.exact,
                 "record every allocation: with --heap-all, --cgroup or --container (they sample the heap by "
                 "default), and with --python-objects (it samples Python's objects by default)");
    app.add_option("--fault-sample", opt.fault_sample,
                   "growth stacks: sample first-touch page faults every BYTES on average (0: off)")
        ->check(byte_count())
        ->capture_default_str();
    app.add_flag("--python-objects", opt.python_objects,
                 "CPython: count Python's object allocator (pymalloc) per Python line, as tracemalloc does. "
                 "Sampled every 65536 bytes by default (estimates; the native heap keeps its own mode): with "
                 "-- CMD inside the process (within tracemalloc's cost), with -p and the other targets at "
                 "pymalloc's sites (a trap per object, a walk per sampled one); every --sample N bytes with "
                 "the heap; --exact counts every object (a trap and a walk each, ~100x the untraced run)");
    app.add_flag("--no-mappings", opt.no_mappings,
                 "do not record anonymous mmap/munmap/mremap/brk per stack (saves a stack walk per mmap)");
    app.add_option("--max-mappings", opt.sizes.mappings, "anonymous mappings recorded at once")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--pprof", opt.exports.pprof,
                   "at the end, write every heap stack to OUT as a gzip'd pprof profile (go tool pprof OUT)")
        ->check(not_empty("a file name"));
    app.add_option("--folded", opt.exports.folded,
                   "at the end, write every heap stack's outstanding bytes to OUT as folded stacks (flamegraph.pl)")
        ->check(not_empty("a file name"));
    app.add_option("--html", opt.exports.html,
                   "at the end, write OUT: one self-contained HTML report (memory over time, flame graph, tables)")
        ->check(not_empty("a file name"));
    app.add_option("--record", opt.record,
                   "write the whole run to FILE (every report's stacks, a heap time series); "
                   "`memtop report FILE` reads it")
        ->check(not_empty("a file name"));
    app.add_option("--record-interval", opt.record_interval, "seconds between --record's time-series samples")
        ->check(seconds_at_least(0.01, "--record-interval: at least 0.01 s"))
        ->capture_default_str();
    app.add_flag("-q,--quiet", opt.quiet, "print no reports (with --listen, the endpoint is the output: a daemon)");
    CLI::Option* listen =
        app.add_option("--listen", opt.listen,
                       "serve /metrics (Prometheus, OpenMetrics), /report.json and /debug/pprof/heap (?pid=N, "
                       "?seconds=N for a delta) over HTTP on [ADDRESS:]PORT (loopback unless an address is given)");
    app.add_option("--listen-auth", opt.listen_auth,
                   "--listen: require HTTP basic auth with the USER:PASSWORD held in FILE (mode 0600 or 0400, "
                   "owned by root or you)")
        ->check(not_empty("a file name"))
        ->needs(listen);
    CLI::Option* cert = app.add_option("--listen-cert", opt.listen_cert,
                                       "--listen: speak HTTPS only (TLS), with the PEM certificate (chain) in FILE")
                            ->check(not_empty("a file name"))
                            ->needs(listen);
    app.add_option("--listen-key", opt.listen_key, "--listen-cert's PEM private key")
        ->check(not_empty("a file name"))
        ->needs(cert);
    cert->needs("--listen-key");
    app.add_flag("--metrics-pid-label", opt.metrics.pid_label,
                 "label /metrics series with the pid (one set per process; else per comm, container and cgroup)");
    app.add_option("--metrics-max-processes", opt.metrics.max_processes,
                   "processes on /metrics, largest resident first")
        ->check(positive_count())
        ->capture_default_str();
    app.add_option("--probes", probes_file, "print where memtop would probe the allocators in FILE, and exit");
    app.add_flag("-v,--verbose", opt.verbose, "libbpf's log and attach details on stderr");
    bool no_multi = false;
    app.add_flag("--no-uprobe-multi", no_multi,
                 "attach one perf-event uprobe per probe even where the kernel has uprobe_multi links");
    bool no_session = false;
    app.add_flag("--no-uprobe-session", no_session,
                 "trap every allocation's return with a return probe even where the kernel has uprobe "
                 "sessions");
    app.add_option("command", opt.command, "-- CMD [ARGS...]: run CMD traced from its first allocation");
    app.add_flag("-f,--follow", opt.follow,
                 "with -- CMD: trace the processes CMD starts too (forks, and what they exec), as strace -f");
    // Set by memtop itself when it re-runs on private allocator copies.
    std::string private_libs;
    std::optional<std::string> saved_library_path;
    app.add_option(kPrivateLibsOption, private_libs)->group("");
    app.add_option(kSavedLibraryPathOption, saved_library_path)->group("");
    app.positionals_at_end(true);
    app.footer(
        "With no target, memtop shows every process's resident memory (kernel tracepoints only).\n"
        "On a terminal memtop shows a live screen (h there lists its keys); -b, --json or a pipe "
        "gets printed reports.\n"
        "Exit status: CMD's own with -- CMD; 0 ok; 1 failure; 2 usage; 3 permission; 4 kernel "
        "lacks BTF/uprobes;\n5 no such process; 6 no allocator or probe attach failed; 126/127 CMD not "
        "executable/not found.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        fprintf(stderr, "memtop: %s\n", usage_message(app, e).c_str());
        return kExitUsage;
    }
    try {
        if (!probes_file.empty()) return print_probe_plan(probes_file);
        if (!pid_list.empty()) opt.pids = parse_pids(pid_list);
        opt.order = *parse_stack_order(sort_name);
        check_export_files(opt.exports);
        check_output_path("--record", opt.record);
        opt.argv.assign(argv, argv + argc);
        opt.uprobe_multi = !no_multi;
        opt.uprobe_session = !no_session;
        int targets =
            !opt.pids.empty() + !opt.command.empty() + opt.heap_all + !opt.cgroup.empty() + !opt.container.empty();
        if (targets > 1)
            throw MemtopError(kExitUsage, "choose one target: -p PID, -- CMD, --cgroup, --container or --heap-all");
        if (opt.sample > kMaxSampleBytes)
            throw MemtopError(kExitUsage, "--sample: at most " + std::to_string(kMaxSampleBytes) + " bytes");
        if (opt.exact && sample_opt->count() && opt.sample)
            throw MemtopError(kExitUsage, "--exact and --sample: choose one");
        if (opt.kernel_sampling && (opt.command.empty() || !opt.sample))
            throw MemtopError(kExitUsage, "--kernel-sampling: applies to --sample with -- CMD");
        if (opt.follow && opt.command.empty())
            throw MemtopError(kExitUsage, "-f/--follow: follows the processes of -- CMD; give one");
        // Probes on every process mapping the allocator files: memtop's too.
        bool probes_everywhere = opt.heap_all || !opt.cgroup.empty() || !opt.container.empty();
        if (!private_libs.empty())
            finish_private_allocator(private_libs, saved_library_path);
        else if (probes_everywhere)
            rerun_on_private_allocator(argc, argv);
        // --sample 0 too: exact, the Python domain as the heap.
        bool sample_given = sample_opt->count() > 0;
        if (probes_everywhere && !opt.exact && !sample_opt->count()) {
            // Every process on the host (or in the cgroup) takes the traps:
            // sampled by default, so that what memtop adds stays near them.
            opt.sample = kDefaultWideSampleBytes;
            fprintf(stderr,
                    "memtop: heap allocations sampled every %llu bytes on average: heap figures are estimates "
                    "(--exact records every one)\n",
                    static_cast<unsigned long long>(opt.sample));
        }
        // The Python domain: counting every object is ~100x the untraced
        // run, so it is sampled by default at its own rate (the heap's is
        // exact, or --heap-all's wider one); --sample N means both. -- CMD
        // samples it in-process, the other targets (and --kernel-sampling)
        // at pymalloc's sites in BPF.
        if (opt.python_objects) {
            if (sample_given) {
                opt.python_sample = opt.sample;
            } else if (!opt.exact) {
                opt.python_sample = kDefaultPythonSampleBytes;
                bool in_process = !opt.command.empty() && !opt.kernel_sampling;
                fprintf(stderr,
                        "memtop: Python objects sampled every %llu bytes %s: Python-domain figures are estimates "
                        "(--exact counts every one)\n",
                        static_cast<unsigned long long>(opt.python_sample),
                        in_process ? "in-process" : "at pymalloc's sites");
            }
        }
        const char* no_color_env = std::getenv("NO_COLOR");
        opt.color = !no_color && !(no_color_env && *no_color_env);
        std::unique_ptr<View> view;
        if (!opt.listen.empty()) {  // usage errors before anything else happens
            parse_listen(opt.listen);
            check_listen_security({opt.listen_auth, opt.listen_cert, opt.listen_key});
        }
        if (opt.quiet) {
            view = std::make_unique<QuietView>();
        } else if (!opt.output.empty()) {
            // Created now (exclusively), so a bad path fails before anything is traced.
            FILE* out = create_exclusive_stream("-o", opt.output);
            view = std::make_unique<PrintView>(opt.json, out);
        } else if (!opt.batch && !opt.json && tui::Screen::available()) {
            view = make_screen(opt);
        }
        Session session(std::move(opt), std::move(view));
        return session.run();
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        return kExitFailure;
    }
}
