// terminfo, apart: <term.h> defines a macro for every capability name
// (columns, lines, ...), so it stays out of the screen's own code.
#pragma once

namespace memtop::tui {

// Does $TERM name a terminal that terminfo knows and that can place the
// cursor (not "dumb")?
bool terminal_addressable(int fd);

}  // namespace memtop::tui
