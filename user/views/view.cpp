#include "views/view.h"

#include "views/json.h"
#include "views/text.h"

#include <cstdio>

namespace memtop {

void PrintView::show(const Report& r) {
    std::string out = json_ ? render_json(r) + "\n" : render_text(r) + "\n";
    fwrite(out.data(), 1, out.size(), out_);
    fflush(out_);
}

}  // namespace memtop
