# memtop's Python-domain test program: tracemalloc's classic example (a
# function appending 100,000 ints to a list), whose ints are pymalloc
# objects that never reach malloc. range() yields a new int object for each
# value from 257 on (-5..256 are cached): 99,743 objects of 28 bytes
# (a one-digit int: 24-byte header + one 4-byte digit), allocated on the
# `for` line.
#
# With --tracemalloc it starts tracemalloc first and prints, after app()
# returns, `traced <current> <peak>`; then (with --wait, after one more line
# on stdin, once the test has read memtop's figures) the top line of
# snapshot.statistics('lineno'), taken while the list is still alive:
# `top <file>:<line> <size> <count>`. Taking the snapshot allocates far more
# than app() (a tuple per trace), which tracemalloc does not count.
# With --keep the list stays alive until the end. With --wait: "ready
# <pid>", a line on stdin, allocate, ("measured", a line,) "done", EOF.
import sys

KEEP = []


def app():
    lt = []
    for i in range(0, 100000):  # @line py_ints
        lt.append(i)  # @line py_append
    if "--keep" in sys.argv:
        KEEP.append(lt)


traced = "--tracemalloc" in sys.argv
if traced:
    import tracemalloc
    tracemalloc.start()
if "--wait" in sys.argv:
    import os
    print("ready %d" % os.getpid(), flush=True)
    sys.stdin.readline()
app()
if traced:
    current, peak = tracemalloc.get_traced_memory()
    print("traced %d %d" % (current, peak), flush=True)
    if "--wait" in sys.argv:
        print("measured", flush=True)
        sys.stdin.readline()
    top = tracemalloc.take_snapshot().statistics("lineno")[0]
    frame = top.traceback[0]
    print("top %s:%d %d %d" % (frame.filename, frame.lineno, top.size, top.count), flush=True)
    tracemalloc.stop()
if "--wait" in sys.argv:
    print("done", flush=True)
    sys.stdin.read()
