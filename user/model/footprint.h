// What a heap block really costs: glibc's chunk header and rounding
// (requested vs used), and the per-object figures a report shows beside a
// stack. Pure: computed in user space from each live block's requested size.
//
// glibc's rules on x86-64 (malloc/malloc.c): every block is a chunk with an
// 8-byte size header (SIZE_SZ), chunks are multiples of 16 bytes
// (MALLOC_ALIGNMENT) and at least 32 (MINSIZE); the next chunk's prev_size
// word lies inside this block's user area, so a chunk of C bytes holds up to
// C - 8. A request of n bytes takes max(32, (n + 8 + 15) & ~15). A block
// from its own mmap (a request of at least the mmap threshold, 128 KiB by
// default) takes that chunk plus 8, rounded up to the 4 KiB page. glibc
// raises the threshold (up to 32 MiB) after such a block is freed, and may
// serve a large request from the top of the heap instead; memtop cannot see
// either, so blocks from 128 KiB up are counted as mmapped: an estimate.
#pragma once

#include <cstdint>

namespace memtop {

inline constexpr uint64_t kGlibcMinChunk = 32;
inline constexpr uint64_t kGlibcMmapThreshold = 128 * 1024;
inline constexpr uint64_t kPageSize = 4096;

// glibc's request2size(): the chunk a heap block of `request` bytes takes.
constexpr uint64_t glibc_chunk_bytes(uint64_t request) {
    uint64_t n = request + 8 + 15;
    if (n < request) return request;  // overflow: no such block
    return n < kGlibcMinChunk ? kGlibcMinChunk : n & ~uint64_t{15};
}

// Bytes of the process's memory one block of `request` bytes uses.
constexpr uint64_t glibc_used_bytes(uint64_t request) {
    uint64_t chunk = glibc_chunk_bytes(request);
    if (request < kGlibcMmapThreshold) return chunk;
    uint64_t mapped = chunk + 8 + kPageSize - 1;
    if (mapped < chunk) return request;  // overflow: no such block
    return mapped & ~(kPageSize - 1);
}

// A stack's share of glibc overhead (used - requested) / used at which a
// report says its blocks are mostly header and rounding, given enough of
// them to matter.
inline constexpr double kOverheadNoteShare = 0.25;
inline constexpr int64_t kOverheadNoteBlocks = 1000;

// Requested bytes per block, 0 without blocks.
constexpr double bytes_per_block(int64_t bytes, int64_t blocks) {
    return blocks > 0 ? static_cast<double>(bytes) / static_cast<double>(blocks) : 0.0;
}

}  // namespace memtop
