// Pages in a real browser: Debian's chromium, headless, driven over CDP by
// tests/browser/check_html.js (puppeteer-core, installed by tools/test from
// tests/browser/package-lock.json). Used by the --html tests
// (test_html.cpp) and the HTML diff of a recording (test_report_query.cpp).
#pragma once

#include <unistd.h>

#include <string>

#include <catch2/catch.hpp>

#include "harness.h"

namespace rt {

// What is needed to drive a browser; the reason it is missing otherwise.
inline std::string browser_missing() {
    if (access("/usr/bin/chromium", X_OK) != 0) return "no /usr/bin/chromium (chromium, tools/deps.txt)";
    if (access("/usr/bin/node", X_OK) != 0 && access("/usr/local/bin/node", X_OK) != 0) return "no node";
    if (access(BROWSER_TESTS_DIR "/node_modules/puppeteer-core", R_OK) != 0)
        return "no puppeteer-core (tools/test runs: npm ci --prefix tests/browser)";
    return "";
}

#define RT_REQUIRE_BROWSER()                                         \
    do {                                                             \
        std::string missing = rt::browser_missing();                 \
        if (!missing.empty()) {                                      \
            if (ci_mode()) FAIL("a browser is needed: " << missing); \
            WARN("skipped: " << missing);                            \
            return;                                                  \
        }                                                            \
    } while (0)

// check_html.js on `page`, measuring `sites` (function names, comma
// separated); what it saw. The screenshot goes to
// MEMTOP_SCREENSHOT_DIR/NAME.png. `python_sites`: functions measured in the
// Python-object flame graph (--python-objects), the same way.
inline json look_at(const std::string& page, const std::string& name, const std::string& sites,
                    const std::string& python_sites = "") {
    using namespace std::chrono_literals;
    Child c;
    std::string error;
    const std::string shot = std::string(MEMTOP_SCREENSHOT_DIR) + "/" + name + ".png";
    REQUIRE(spawn(c, {"node", BROWSER_TESTS_DIR "/check_html.js", page, shot, sites, python_sites}, false, &error));
    REQUIRE(wait_exit({&c}, c, 90s));  // chromium starts slowly on a loaded host
    INFO(c.describe(5));
    REQUIRE(c.exit_code() == 0);
    REQUIRE_FALSE(c.out_lines.empty());
    WARN("screenshot: " << shot);
    return json::parse(c.out_lines.back());
}

}  // namespace rt
