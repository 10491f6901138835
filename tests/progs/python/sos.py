"""memory_profiler's sum-of-diffs example (memtop --lines is compared with it)."""
try:
    profile  # noqa: F821 - memory_profiler's builtin under `python3 -m memory_profiler`
except NameError:

    def profile(f):
        return f


@profile
def sum_of_diffs(vals):
    """Compute sum of diffs"""
    vals2 = vals[1:]  # @line sos_slice

    total = 0
    for v1, v2 in zip(vals, vals2):
        total += v2 - v1

    return total


if __name__ == "__main__":
    vals = list(range(1, 1_000_000, 3))
    print(sum_of_diffs(vals))
