#!/usr/bin/env python3
"""Reference data for ggml's block-quantized formats, from the `gguf` Python package.

`gguf.quants` holds numpy implementations of ggml's formats, written independently of our C
code (src/core/quant.c); tests/test_quant.c checks om_dequantize against what this script
records, bit for bit.

For every format two kinds of blocks are recorded:
  - "random": random bytes with every half-precision scale/minimum field overwritten by a
    random finite f16 (normal numbers of both signs, subnormals, +-0), so that every bit of
    every quant and sub-block scale field is exercised; gguf only dequantizes these.
  - "quantized" (the formats gguf can quantize: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; gguf has no
    quantizer for the K-quants): random Gaussian rows with a few outliers, quantized by gguf,
    which are the blocks a real checkpoint holds.
Both are stored with gguf's float32 dequantization.

Output (default tests/data/quant_reference.{bin,json}, deterministic for a given seed):
  quant_reference.bin   the byte arrays, one after another, each at a 16-byte-aligned offset
  quant_reference.json  {"formats": [{"name", "block_size", "block_bytes", "cases": [
                           {"kind", "n_blocks", "bytes_offset", "values_offset"}]}]}
                        with offsets into the .bin; "values" are little-endian float32.

Usage: python3 tools/make_quant_reference.py [--out DIR] [--seed N]
"""
import argparse
import importlib.metadata
import json
import os

import numpy as np
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

# Format -> byte offsets of its f16 fields within a block (ggml-common.h layouts).
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],   # scales[16], qs[64], d, dmin
    T.Q3_K: [108],      # hmask[32], qs[64], scales[12], d
    T.Q4_K: [0, 2],     # d, dmin, scales[12], qs[128]
    T.Q5_K: [0, 2],     # d, dmin, scales[12], qh[32], qs[128]
    T.Q6_K: [208],      # ql[128], qh[64], scales[16], d
}
QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
RANDOM_VALUES = 2048    # elements of random blocks per format
QUANTIZED_VALUES = 1024  # elements of gguf-quantized rows per format


def random_f16(rng, n):
    """n finite f16 values: mostly normal numbers of both signs over a moderate range (the
    products in dequantization stay finite), some subnormals and signed zeros."""
    mag = np.exp(rng.uniform(np.log(1e-4), np.log(4.0), n)).astype(np.float16)
    sign = np.where(rng.random(n) < 0.5, -1, 1).astype(np.float16)
    v = (mag * sign).view(np.uint16).copy()
    kind = rng.random(n)
    sub = kind < 0.1
    v[sub] = rng.integers(1, 0x400, sub.sum()).astype(np.uint16) | np.where(rng.random(sub.sum()) < 0.5, 0x8000, 0).astype(np.uint16)
    zero = (kind >= 0.1) & (kind < 0.13)
    v[zero] = np.where(rng.random(zero.sum()) < 0.5, 0x8000, 0).astype(np.uint16)
    return v


def random_blocks(rng, t, n_blocks):
    bs, bb = GGML_QUANT_SIZES[t]
    b = rng.integers(0, 256, (n_blocks, bb), dtype=np.uint8)
    for off in F16_FIELDS[t]:
        b[:, off:off + 2] = random_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    blob = bytearray()

    def put(arr):
        while len(blob) % 16:
            blob.append(0)
        off = len(blob)
        blob.extend(np.ascontiguousarray(arr).tobytes())
        return off

    formats = []
    for t in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        bs, bb = GGML_QUANT_SIZES[t]
        cases = []
        nb = RANDOM_VALUES // bs
        b = random_blocks(rng, t, nb)
        vals = quants.dequantize(b, t).astype("<f4").reshape(-1)
        assert vals.size == nb * bs and np.isfinite(vals).all()
        cases.append({"kind": "random", "n_blocks": nb, "bytes_offset": put(b), "values_offset": put(vals)})
        if t in QUANTIZABLE:
            rows = rng.standard_normal((QUANTIZED_VALUES // 256, 256)).astype(np.float32)
            rows[rng.random(rows.shape) < 0.01] *= 20  # outliers, as real weights have
            rows[0, :32] = 0  # an all-zero block (scale 0)
            q = quants.quantize(rows, t)
            nbq = QUANTIZED_VALUES // bs
            qb = q.reshape(nbq, bb)
            qv = quants.dequantize(qb, t).astype("<f4").reshape(-1)
            cases.append({"kind": "quantized", "n_blocks": nbq, "bytes_offset": put(qb), "values_offset": put(qv)})
        formats.append({"name": t.name, "block_size": bs, "block_bytes": bb, "cases": cases})

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quant_reference.bin"), "wb") as f:
        f.write(bytes(blob))
    meta = {
        "generator": "tools/make_quant_reference.py",
        "seed": args.seed,
        "gguf_version": importlib.metadata.version("gguf"),
        "numpy_version": np.__version__,
        "bin_bytes": len(blob),
        "formats": formats,
    }
    with open(os.path.join(args.out, "quant_reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(blob)} bytes, {len(formats)} formats")


if __name__ == "__main__":
    main()
