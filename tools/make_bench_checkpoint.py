#!/usr/bin/env python3
"""A random-weight bf16 checkpoint with Qwen3-0.6B's exact shapes, for benchmarks.

Writes OUTDIR/config.json, OUTDIR/generation_config.json and OUTDIR/model.safetensors (about
1.2 GB: 28 layers, hidden 1024, 16 query heads / 8 KV heads of head_dim 128, intermediate 3072,
vocab 151936, tied embeddings so there is no lm_head.weight). The tensors are drawn straight in
bf16 and written with the safetensors library; no model is instantiated, so it needs about
2.5 GB of RAM and takes seconds. The outputs are meaningless text; only the speed matters.
Deterministic for a given --seed.

Usage:  python3 tools/make_bench_checkpoint.py OUTDIR [--seed 0]
"""

import argparse
import json
import math
import os
import sys
import time

import torch
from safetensors.torch import save_file

CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
    "transformers_version": "4.51.0",
}


def tensor_shapes(c):
    """(name, shape, kind) in checkpoint order; kind picks the random distribution."""
    H, I, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd, nh, nkv = c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (c["vocab_size"], H), "linear")]
    for i in range(L):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (H,), "norm"),
            (p + "self_attn.q_proj.weight", (nh * hd, H), "linear"),
            (p + "self_attn.k_proj.weight", (nkv * hd, H), "linear"),
            (p + "self_attn.v_proj.weight", (nkv * hd, H), "linear"),
            (p + "self_attn.o_proj.weight", (H, nh * hd), "linear"),
            (p + "self_attn.q_norm.weight", (hd,), "norm"),
            (p + "self_attn.k_norm.weight", (hd,), "norm"),
            (p + "post_attention_layernorm.weight", (H,), "norm"),
            (p + "mlp.gate_proj.weight", (I, H), "linear"),
            (p + "mlp.up_proj.weight", (I, H), "linear"),
            (p + "mlp.down_proj.weight", (H, I), "linear"),
        ]
    out.append(("model.norm.weight", (H,), "norm"))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (c["vocab_size"], H), "linear"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    os.makedirs(args.outdir, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)
    tensors = {}
    for name, shape, kind in tensor_shapes(CONFIG):
        t = torch.randn(shape, generator=gen, dtype=torch.bfloat16)
        if kind == "norm":
            t = (1.0 + 0.3 * t).to(torch.bfloat16)
        else:
            t.mul_(1.0 / math.sqrt(shape[-1]))
        tensors[name] = t.contiguous()
    save_file(tensors, os.path.join(args.outdir, "model.safetensors"), metadata={"format": "pt"})
    for fname, obj in (("config.json", CONFIG), ("generation_config.json", GENERATION_CONFIG)):
        with open(os.path.join(args.outdir, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.outdir}: {len(tensors)} tensors, {n / 1e6:.1f}M parameters, "
          f"{time.time() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
