# Allocation-heavy workloads for tools/bench-python.sh. Each prints
# "elapsed SECONDS" of its own loop, so that the tracer's start-up is not
# timed. Usage: bench_alloc.py example|ints|dicts|objects|bytes [--tracemalloc]
# [--wait]. With --wait it prints "ready <pid>" and waits for a line on
# stdin before the loop: memtop attaches (-p) to it meanwhile.
import sys
import time


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


def example(n):
    # tracemalloc's classic example: 100,000 ints appended to a list.
    lt = []
    for i in range(0, 100000):
        lt.append(i)
    return lt


def ints(n):
    a = []
    for i in range(n):
        a.append(i * 3)
    return a


def dicts(n):
    return [{"k": str(i), "v": i} for i in range(n // 4)]


def objects(n):
    return [Point(i, i + 1) for i in range(n // 2)]


def blobs(n):
    # Over pymalloc's 512 bytes: these go to glibc's malloc.
    return [bytes(1000) for _ in range(n // 20)]


WORK = {"example": example, "ints": ints, "dicts": dicts, "objects": objects, "bytes": blobs}

if "--tracemalloc" in sys.argv:
    import tracemalloc

    tracemalloc.start()
work = WORK[sys.argv[1]]
if "--wait" in sys.argv:
    import os

    print("ready %d" % os.getpid(), flush=True)
    sys.stdin.readline()
t = time.perf_counter()
for _ in range(3):
    keep = work(200000)
    del keep
print("elapsed %.6f" % (time.perf_counter() - t), flush=True)
