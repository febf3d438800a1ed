#!/usr/bin/env python3
"""A text-like body for the compression benches and test_compression.sh (which imports block):
lines of a 7-digit number and 12 words drawn at random (zstd level 1 gets about 3:1 on it, not
100:1). A block of min(MIB, 64) MiB is generated and repeated up to MIB MiB: each 1 MiB frame is
compressed on its own, so the repetition does not help zstd.

    bench/textbody.py PATH MIB [SEED]
"""
import random
import sys

WORDS = ("object stripe cell drive scrub erasure bucket the of and to a in is that for it as was "
         "with be by on not he this are or his from at which but have an they you were her "
         "all she there would their we him been has when who will more no if out so said").split()


def block(rng, n):
    out, size = [], 0
    while size < n:
        line = "%07d %s\n" % (rng.randrange(10**7), " ".join(rng.choices(WORDS, k=12)))
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def main():
    path, mib = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    chunk = block(rng, min(mib, 64) << 20)
    with open(path, "wb") as f:
        left = mib << 20
        while left:
            f.write(chunk[:left])
            left -= min(left, len(chunk))


if __name__ == "__main__":
    main()
