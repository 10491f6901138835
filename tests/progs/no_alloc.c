/* Dynamically linked against the C library, and allocates nothing: exits at
 * once. `memtop -- no_alloc` must still list it (a target is always listed).
 * The tests use it rather than /bin/true, which is a static busybox in the
 * kernel-matrix guests. */
int main(void) {
    return 0;
}
