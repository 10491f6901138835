#include "views/tui/terminfo.h"

#include <ncurses.h>
#include <term.h>

namespace memtop::tui {

bool terminal_addressable(int fd) {
    int err = 0;
    if (setupterm(nullptr, fd, &err) != OK) return false;
    const char* cup = tigetstr(const_cast<char*>("cup"));
    bool ok = cup != nullptr && cup != reinterpret_cast<const char*>(-1);
    del_curterm(cur_term);
    return ok;
}

}  // namespace memtop::tui
