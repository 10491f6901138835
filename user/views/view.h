// Where reports go. The session builds a Report every interval and hands it
// to one view: the printers write text or NDJSON to stdout; the live screen
// (user/tui/) draws it. A view never reaches the BPF layer: what it may ask
// of the session goes through SessionControl, in the session's own thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "model/report.h"
#include "views/format.h"

namespace memtop {

// What an interactive view may ask of the session. Called only from the
// view's callbacks (the session's loop), so nothing here needs locking.
class SessionControl {
public:
    virtual double interval() const = 0;            // seconds between reports
    virtual void set_interval(double seconds) = 0;  // the next report comes that long after the last
    virtual void quit() = 0;                        // the loop ends; a final report follows
    // Every report also carries this process's top stacks (its detail view
    // is open), not only the host-wide top -T.
    virtual void focus(std::optional<uint32_t> pid) = 0;
    // Starts heap-tracing pid with the -p attach path; returns what was done.
    // Throws MemtopError naming what failed.
    virtual std::string trace_pid(int pid) = 0;
    // Stops reporting pid's heap; returns what was done. Its probes stay
    // attached until memtop exits (see the definition).
    virtual std::string untrace_pid(int pid) = 0;
    // Which heap stacks the next reports carry, in what order (--sort).
    virtual StackOrder stack_order() const = 0;
    virtual void set_stack_order(StackOrder order) = 0;
    // Writes what the screen shows (the last report, every stack) to a new
    // file that `memtop report` reads; returns the message to show (its
    // path). Throws MemtopError naming what failed.
    virtual std::string save() = 0;

protected:
    ~SessionControl() = default;
};

class View {
public:
    virtual ~View() = default;
    // Once, when every probe is attached and the loop is about to start.
    virtual void start(SessionControl&) {}
    // Every report, in order; the last one has `final` set.
    virtual void show(const Report& r) = 0;
    // Descriptors the session's loop watches for this view (a terminal's
    // input, ...), and what to do when one is ready (epoll event bits).
    virtual std::vector<int> fds() const { return {}; }
    virtual void on_ready(int /*fd*/, uint32_t /*events*/) {}
    // A person is watching: the first report comes within a second.
    virtual bool interactive() const { return false; }
};

// Text (render_text) or NDJSON (render_json) on stdout, one report at a time.
class PrintView : public View {
public:
    // Reports go to `out` (stdout, or memtop's -o FILE), which it does not own.
    explicit PrintView(bool json, FILE* out = stdout) : json_(json), out_(out) {}
    void show(const Report& r) override;

private:
    bool json_;
    FILE* out_;
};

// -q: reports are made (for --listen) but not printed.
class QuietView : public View {
public:
    void show(const Report&) override {}
};

}  // namespace memtop
