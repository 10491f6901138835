// A PNG as rsvg-convert writes it (8-bit RGB or RGBA, not interlaced),
// decoded to pixels with zlib: what the --plot test looks at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rt {

struct Image {
    int width = 0, height = 0;
    std::vector<uint8_t> rgba;  // width * height * 4
    // The pixel at (x, y), alpha applied over white (as a viewer shows it).
    void rgb(int x, int y, int out[3]) const;
};

// nullopt (and *error says why) for a file that is not such a PNG.
std::optional<Image> read_png(const std::string& path, std::string* error);

}  // namespace rt
