/* A static program that calls no allocator, as a Go program (whose runtime
 * maps its own heap) or one with its own allocator: memtop must say it traces
 * the malloc family and where such a program's memory shows instead.  No C
 * library: only the exit system call. */
void _start(void) {
#if defined(__x86_64__)
    __asm__ volatile("mov $60, %eax\n xor %edi, %edi\n syscall");
#elif defined(__aarch64__)
    __asm__ volatile("mov x8, #93\n mov x0, #0\n svc #0");
#endif
    for (;;) {
    }
}
