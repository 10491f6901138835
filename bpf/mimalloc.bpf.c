// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The programs of mimalloc.h, loaded on demand (user/kernel/tracer.cpp,
 * load_mimalloc) on the maps of the memtop object already loaded. It is
 * memtop.bpf.c plus mimalloc.h, so that every map and global has the same
 * name and layout as in memtop's object (the loader checks the sizes); the
 * loader loads only mimalloc.h's programs from it.
 */
#include "memtop.bpf.c"
#include "mimalloc.h"
