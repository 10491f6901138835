#include "png_read.h"

#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace rt {

namespace {

uint32_t be32(const std::string& s, size_t at) {
    return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
           (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

int paeth(int a, int b, int c) {
    int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

}  // namespace

void Image::rgb(int x, int y, int out[3]) const {
    const uint8_t* p = &rgba[(size_t(y) * width + x) * 4];
    for (int i = 0; i < 3; i++) out[i] = (p[i] * p[3] + 255 * (255 - p[3])) / 255;
}

std::optional<Image> read_png(const std::string& path, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto fail = [&](const std::string& why) {
        *error = path + ": " + why;
        return std::nullopt;
    };
    if (data.size() < 8 || data.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return fail("not a PNG");
    Image img;
    int depth = 0, color = 0, interlace = 0;
    std::string idat;
    for (size_t at = 8; at + 12 <= data.size();) {
        uint32_t len = be32(data, at);
        std::string type = data.substr(at + 4, 4);
        if (at + 12 + len > data.size()) return fail("cut short");
        if (type == "IHDR") {
            img.width = int(be32(data, at + 8));
            img.height = int(be32(data, at + 12));
            depth = uint8_t(data[at + 16]);
            color = uint8_t(data[at + 17]);
            interlace = uint8_t(data[at + 20]);
        } else if (type == "IDAT") {
            idat += data.substr(at + 8, len);
        }
        at += 12 + len;
    }
    if (depth != 8 || (color != 6 && color != 2) || interlace) return fail("not 8-bit RGB(A), non-interlaced");
    const int bpp = color == 6 ? 4 : 3;
    const size_t stride = size_t(img.width) * bpp;
    std::string raw((stride + 1) * img.height, '\0');
    uLongf raw_len = raw.size();
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_len, reinterpret_cast<const Bytef*>(idat.data()),
                   idat.size()) != Z_OK ||
        raw_len != raw.size())
        return fail("corrupt image data");
    std::vector<uint8_t> prev(stride, 0), cur(stride);
    img.rgba.resize(size_t(img.width) * img.height * 4);
    for (int y = 0; y < img.height; y++) {
        const uint8_t* row = reinterpret_cast<const uint8_t*>(raw.data()) + y * (stride + 1);
        const int filter = row[0];
        for (size_t i = 0; i < stride; i++) {
            int a = i >= size_t(bpp) ? cur[i - bpp] : 0, b = prev[i], c = i >= size_t(bpp) ? prev[i - bpp] : 0;
            int x = row[1 + i];
            switch (filter) {
                case 0:
                    break;
                case 1:
                    x += a;
                    break;
                case 2:
                    x += b;
                    break;
                case 3:
                    x += (a + b) / 2;
                    break;
                case 4:
                    x += paeth(a, b, c);
                    break;
                default:
                    return fail("bad row filter");
            }
            cur[i] = uint8_t(x);
        }
        for (int x = 0; x < img.width; x++)
            for (int k = 0; k < 4; k++)
                img.rgba[(size_t(y) * img.width + x) * 4 + k] = k < bpp ? cur[size_t(x) * bpp + k] : 255;
        prev = cur;
    }
    return img;
}

}  // namespace rt
