# memtop's Python test program: known blocks through malloc from two Python
# lines that run the same C path (bytearray's buffer), so the two stacks
# differ only in their Python frames. A bytearray of N bytes asks
# PyObject_Realloc(NULL, N + 1) for its buffer, which pymalloc passes to
# realloc(NULL, N + 1) for anything over 512 bytes: N + 1 bytes per block
# (expect.h's kPyBlockA/B).
#
# Protocol as the C programs' (tests/progs/common.h): with --wait print
# "ready <pid>", wait for a line on stdin, allocate, print "done", exit at EOF.
import os
import sys

KEEP = []


def site_a():
    KEEP.append(bytearray(100000))  # @line py_site_a


def site_b():
    KEEP.append(bytearray(200000))  # @line py_site_b


def run_sites():
    for _ in range(3):
        site_a()  # @line py_run_a
    site_b()  # @line py_run_b


if "--wait" in sys.argv:
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    run_sites()  # @line py_module_wait
    print("done", flush=True)
    sys.stdin.read()
else:
    run_sites()  # @line py_module
