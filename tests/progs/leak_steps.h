/* Expected numbers of leak_steps.c (as expect.h for the other programs):
 * a heap that grows at one site between two checkpoints. */
#ifndef MEMTOP_TEST_PROGS_LEAK_STEPS_H
#define MEMTOP_TEST_PROGS_LEAK_STEPS_H

/* Step 1: a baseline every step keeps. */
#define LS_KEEP_N 4 /* steady_keep: 4 x malloc(3000), kept */
#define LS_KEEP_SIZE 3000
#define LS_KEEP_BYTES (LS_KEEP_N * LS_KEEP_SIZE)
#define LS_TEMP_N 50 /* steady_temp: 50 x (malloc(256); free), each step */
#define LS_TEMP_SIZE 256

/* Step 2 (only with --leak or a second "go"): the leak. */
#define LS_LEAK_N 6 /* grow_leak: 6 x malloc(7000), kept */
#define LS_LEAK_SIZE 7000
#define LS_LEAK_BYTES (LS_LEAK_N * LS_LEAK_SIZE)

#endif
