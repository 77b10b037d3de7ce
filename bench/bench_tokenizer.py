#!/usr/bin/env python3
"""Tokenizer benchmark, Hugging Face side: encodes a text file with HF `tokenizers` on one
thread and prints the time, throughput and a checksum of the ids that bench_tokenizer (the C
side, same arguments) must reproduce.

    python3 bench/bench_tokenizer.py --make-texts /tmp/tokbench   # writes the two bench texts
    RAYON_NUM_THREADS=1 python3 bench/bench_tokenizer.py tests/data/tokenizers/qwen3 /tmp/tokbench/code_en.txt
    build/bench_tokenizer tests/data/tokenizers/qwen3 /tmp/tokbench/code_en.txt

The texts are reproducible from installed packages and committed data:
  code_en.txt  the first 4 MiB of transformers' models/*/modeling_*.py in path order (Python code
               with English docstrings; the transformers version is printed)
  multi.txt    the strings of tests/data/tokenizers/corpus.json, shuffled with a fixed seed and
               repeated to 1 MiB (many scripts, emoji, whitespace runs)
"""
import argparse
import glob
import json
import os
import random
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))


def make_texts(out_dir):
    import transformers

    os.makedirs(out_dir, exist_ok=True)
    root = os.path.dirname(transformers.__file__)
    files = sorted(glob.glob(os.path.join(root, "models", "**", "modeling_*.py"), recursive=True))
    files = [os.path.relpath(f, root) for f in files]
    limit = 4 << 20
    parts, size = [], 0
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8", newline="") as f:
            t = f.read()
        parts.append(t)
        size += len(t.encode("utf-8"))
        if size >= limit:
            break
    data = "".join(parts).encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    with open(os.path.join(out_dir, "code_en.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(data)
    with open(os.path.join(HERE, "..", "tests", "data", "tokenizers", "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    rng = random.Random(1234)
    out, size = [], 0
    while size < (1 << 20):
        batch = corpus[:]
        rng.shuffle(batch)
        for s in batch:
            out.append(s)
            size += len(s.encode("utf-8")) + 1
    with open(os.path.join(out_dir, "multi.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(out))
    print(f"wrote {out_dir}/code_en.txt (transformers {transformers.__version__}) and {out_dir}/multi.txt")


def checksum(ids):
    # FNV-1a over the ids as 32-bit little-endian words, as bench_tokenizer.c computes it
    h = 0xCBF29CE484222325
    for i in ids:
        for k in range(4):
            h ^= (i >> (8 * k)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer", nargs="?", help="folder with tokenizer.json")
    ap.add_argument("text", nargs="?", help="UTF-8 text file")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--make-texts", metavar="DIR")
    args = ap.parse_args()
    if args.make_texts:
        make_texts(args.make_texts)
        return 0
    if not args.tokenizer or not args.text:
        ap.error("tokenizer and text are required")
    import tokenizers
    from tokenizers import Tokenizer

    t0 = time.perf_counter()
    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    load = time.perf_counter() - t0
    with open(args.text, encoding="utf-8", newline="") as f:
        text = f.read()
    nbytes = len(text.encode("utf-8"))
    times, ids = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    dec = tok.decode(ids, skip_special_tokens=False)
    tdec = time.perf_counter() - t0
    best, first = min(times), times[0]
    print(f"HF tokenizers {tokenizers.__version__} ({os.environ.get('RAYON_NUM_THREADS')} thread): "
          f"{os.path.basename(args.tokenizer.rstrip('/'))} {os.path.basename(args.text)} {nbytes} bytes -> {len(ids)} ids, "
          f"checksum {checksum(ids):016x}")
    print(f"  load {load * 1e3:.0f} ms; encode first {first * 1e3:.1f} ms, best {best * 1e3:.1f} ms = "
          f"{nbytes / best / 1e6:.2f} MB/s, {len(ids) / best / 1e6:.2f} M tokens/s; decode {tdec * 1e3:.1f} ms "
          f"({len(dec.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
