/* api_sites: the allocators' own APIs called by name (jemalloc's mallocx
 * family, tcmalloc's tc_*, mimalloc's mi_*), one named function per call
 * site, built once per allocator (api_sites_jemalloc, _tcmalloc,
 * _mimalloc). Each table row is what memtop must report for the stacks whose
 * frames[0] is that function, at the program's end. Sizes are distinct, so a
 * block counted at the wrong site or twice shows.
 */
#ifndef MEMTOP_TEST_PROGS_API_SITES_H
#define MEMTOP_TEST_PROGS_API_SITES_H

#ifdef __cplusplus
namespace expect {

struct ApiSite {
    const char* function;        /* frames[0].function */
    long long bytes;             /* outstanding at the end */
    long long allocs;            /* outstanding blocks at the end */
    long long alloc_bytes_total; /* allocated there in all */
    long long allocs_total;      /* allocations there in all (a realloc is one more) */
};

/* A realloc from S1 to S2 in one function: S2 outstanding, S1 + S2 allocated. */
inline constexpr ApiSite api_jemalloc_sites[] = {
    {"je_mallocx_site", 1001, 1, 1001, 1},       /* mallocx(1001, 0) */
    {"je_mallocx_flags_site", 1002, 1, 1002, 1}, /* mallocx(1002, ZERO | ALIGN(64)) */
    {"je_rallocx_site", 2003, 1, 101 + 2003, 2}, /* mallocx(101) -> rallocx(2003) */
    {"je_sdallocx_site", 0, 0, 301, 1},          /* mallocx(301); sdallocx */
    {"je_dallocx_site", 0, 0, 302, 1},           /* mallocx(302); dallocx */
    {"je_free_of_mallocx_site", 0, 0, 303, 1},   /* mallocx(303); free */
    {"je_dallocx_of_malloc_site", 0, 0, 304, 1}, /* malloc(304); dallocx */
    {"je_malloc_site", 1005, 1, 1005, 1},        /* malloc(1005): once, not again as mallocx */
};

inline constexpr ApiSite api_tcmalloc_sites[] = {
    {"tc_malloc_site", 1011, 1, 1011, 1},
    {"tc_calloc_site", 1010, 1, 1010, 1},        /* tc_calloc(10, 101) */
    {"tc_realloc_site", 2013, 1, 102 + 2013, 2}, /* tc_malloc(102) -> tc_realloc(2013) */
    {"tc_memalign_site", 640, 1, 640, 1},        /* tc_memalign(64, 640) */
    {"tc_posix_memalign_site", 256, 1, 256, 1},  /* tc_posix_memalign(&p, 64, 256) */
    {"tc_valloc_site", 123, 1, 123, 1},
    {"tc_skip_new_handler_site", 1019, 1, 1019, 1}, /* tc_malloc_skip_new_handler(1019) */
    {"tc_free_site", 0, 0, 311, 1},
    {"tc_free_sized_site", 0, 0, 312, 1},
    {"tc_new_site", 713, 1, 713, 1},
    {"tc_newarray_site", 714, 1, 714, 1},
    {"tc_new_nothrow_site", 715, 1, 715, 1},
    {"tc_new_aligned_site", 716, 1, 716, 1},     /* tc_new_aligned(716, 64) */
    {"tc_delete_site", 0, 0, 317, 1},            /* tc_new(317); tc_delete */
    {"tc_deletearray_sized_site", 0, 0, 318, 1}, /* tc_newarray(318); tc_deletearray_sized */
    {"tc_plain_malloc_site", 1005, 1, 1005, 1},  /* malloc(1005): once, not again as tc_malloc */
};

inline constexpr ApiSite api_mimalloc_sites[] = {
    {"mi_malloc_site", 1021, 1, 1021, 1},
    {"mi_zalloc_site", 1022, 1, 1022, 1},
    {"mi_calloc_site", 1020, 1, 1020, 1},  /* mi_calloc(10, 102) */
    {"mi_mallocn_site", 1030, 1, 1030, 1}, /* mi_mallocn(10, 103) */
    {"mi_malloc_small_site", 48, 1, 48, 1},
    {"mi_malloc_aligned_site", 640, 1, 640, 1},          /* mi_malloc_aligned(640, 64) */
    {"mi_zalloc_aligned_site", 650, 1, 650, 1},          /* mi_zalloc_aligned(650, 64) */
    {"mi_calloc_aligned_site", 660, 1, 660, 1},          /* mi_calloc_aligned(10, 66, 64) */
    {"mi_posix_memalign_site", 257, 1, 257, 1},          /* mi_posix_memalign(&p, 64, 257) */
    {"mi_realloc_site", 2023, 1, 103 + 2023, 2},         /* mi_malloc(103) -> mi_realloc(2023) */
    {"mi_rezalloc_site", 2024, 1, 104 + 2024, 2},        /* mi_zalloc(104) -> mi_rezalloc(2024) */
    {"mi_reallocn_site", 2050, 1, 100 + 2050, 2},        /* mi_mallocn(2, 50) -> mi_reallocn(10, 205) */
    {"mi_recalloc_site", 2060, 1, 102 + 2060, 2},        /* mi_calloc(2, 51) -> mi_recalloc(10, 206) */
    {"mi_realloc_aligned_site", 2070, 1, 105 + 2070, 2}, /* mi_malloc_aligned(105) -> mi_realloc_aligned(2070) */
    {"mi_reallocf_site", 2090, 1, 107 + 2090, 2},        /* mi_malloc(107) -> mi_reallocf(2090) */
    {"mi_free_site", 0, 0, 321, 1},
    {"mi_free_size_site", 0, 0, 322, 1},
    {"mi_free_aligned_site", 0, 0, 323, 1},
    {"mi_new_site", 731, 1, 731, 1},
    {"mi_new_n_site", 730, 1, 730, 1}, /* mi_new_n(10, 73) */
    {"mi_new_nothrow_site", 733, 1, 733, 1},
    {"mi_new_aligned_site", 734, 1, 734, 1},    /* mi_new_aligned(734, 64) */
    {"mi_plain_malloc_site", 1005, 1, 1005, 1}, /* malloc(1005): once, not again as mi_malloc */
};

/* api_sites_mimalloc --heap: mimalloc's heap API. The heaps themselves
 * (mi_heap_new's own allocation) are not counted. */
inline constexpr ApiSite api_mimalloc_heap_sites[] = {
    {"mi_heap_malloc_site", 1101, 1, 1101, 1},
    {"mi_heap_zalloc_site", 1102, 1, 1102, 1},
    {"mi_heap_calloc_site", 1110, 1, 1110, 1},  /* (10, 111) */
    {"mi_heap_mallocn_site", 1120, 1, 1120, 1}, /* (10, 112) */
    {"mi_heap_malloc_small_site", 56, 1, 56, 1},
    {"mi_heap_malloc_aligned_site", 1130, 1, 1130, 1},
    {"mi_heap_malloc_aligned_at_site", 1131, 1, 1131, 1},
    {"mi_heap_zalloc_aligned_site", 1132, 1, 1132, 1},
    {"mi_heap_calloc_aligned_site", 1140, 1, 1140, 1},        /* (10, 114, 64) */
    {"mi_heap_realloc_site", 2150, 1, 115 + 2150, 2},         /* 115 -> 2150 */
    {"mi_heap_rezalloc_site", 2160, 1, 116 + 2160, 2},        /* 116 -> 2160 */
    {"mi_heap_reallocn_site", 2170, 1, 118 + 2170, 2},        /* (2, 59) -> (10, 217) */
    {"mi_heap_recalloc_site", 2180, 1, 120 + 2180, 2},        /* (2, 60) -> (10, 218) */
    {"mi_heap_reallocf_site", 2190, 1, 121 + 2190, 2},        /* 121 -> 2190 */
    {"mi_heap_realloc_aligned_site", 2200, 1, 122 + 2200, 2}, /* 122 -> 2200 */
    {"mi_heap_strdup_site", 100, 1, 100, 1},                  /* 99 characters */
    {"mi_heap_strndup_site", 51, 1, 51, 1},                   /* 50 of them */
    {"mi_heap_realpath_site", 2, 1, 2, 1},                    /* "/" */
    {"mi_heap_free_site", 0, 0, 331, 1},
    /* 341 + 2 * 171 + 100 + (343 -> 3430) + 344, all freed by mi_heap_destroy */
    {"mi_heap_destroy_site", 0, 0, 341 + 342 + 100 + 343 + 3430 + 344, 6},
    /* malloc(351), mi_zalloc(352), mi_strdup(99 characters) from the default heap */
    {"mi_heap_default_destroy_site", 0, 0, 351 + 352 + 100, 3},
    /* 361 outlives mi_heap_delete; 362 goes with the next heap's destroy */
    {"mi_heap_delete_site", 361, 1, 361 + 362, 2},
};

/* api_sites_mimalloc --strings */
inline constexpr ApiSite api_mimalloc_string_sites[] = {
    {"mi_strdup_site", 100, 1, 100, 1},        {"mi_strndup_site", 41, 1, 41, 1},
    {"mi_strndup_whole_site", 31, 1, 31, 1},   {"mi_strdup_long_site", 10001, 1, 10001, 1},
    {"mi_strdup_edge_site", 4096, 1, 4096, 1}, /* 4095 characters */
    {"mi_strdup_free_site", 0, 0, 100, 1},     {"mi_realpath_site", 2, 1, 2, 1},
    {"mi_realpath_buf_site", 0, 0, 0, 0}, /* into the caller's buffer */
};

/* api_sites_mimalloc --expand: growth in place counts as allocated bytes,
 * not as an allocation. */
inline constexpr ApiSite api_mimalloc_expand_sites[] = {
    {"mi_expand_grow_site", 1020, 1, 1020, 1},  /* 1000 -> 1020 */
    {"mi_expand_shrink_site", 900, 1, 1010, 1}, /* 1010 -> 900 */
    {"mi_expand_fail_site", 1001, 1, 1001, 1},  /* 1001 -> 100000: NULL */
    {"mi_expand_free_site", 0, 0, 1015, 1},     /* 1002 -> 1015, freed */
};

/* api_sites_mimalloc --reallocf-fail */
inline constexpr ApiSite api_mimalloc_reallocf_fail_sites[] = {
    {"mi_reallocf_fail_site", 0, 0, 371, 1},
    {"mi_heap_reallocf_fail_site", 0, 0, 372, 1},
    {"mi_realloc_fail_site", 373, 1, 373, 1},
};

/* api_sites_jemalloc --expand: xallocx. The block's size becomes what was
 * asked (size, up to size + extra) when the real size reaches size. */
inline constexpr ApiSite api_jemalloc_expand_sites[] = {
    {"je_xallocx_grow_site", 1010, 1, 1010, 1},  /* 1000 -> 1010 */
    {"je_xallocx_extra_site", 1280, 1, 1280, 1}, /* 1100 -> 1150 + 200: 1280 */
    {"je_xallocx_shrink_site", 900, 1, 1020, 1}, /* 1020 -> 900 */
    {"je_xallocx_fail_site", 1030, 1, 1030, 1},  /* 1030 -> 50000: stays */
};

}  // namespace expect
#endif

#endif
