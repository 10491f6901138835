// Catch2 runner for the memtop runtime tests (needs root and BPF; see
// harness.h: without them the tests are skipped with a warning, or fail when
// CI=true).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

int main(int argc, char** argv) {
    // Writing to a test program that already died must not kill the runner.
    std::signal(SIGPIPE, SIG_IGN);
    return Catch::Session().run(argc, argv);
}
