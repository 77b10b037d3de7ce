#!/usr/bin/env python3
"""Writes tests/data/rope_reference.json: RoPE inverse frequencies and attention factors that
transformers' modeling_rope_utils computes for the rope_scaling kinds ominix implements
(default with full and partial rotary, linear, dynamic NTK at two sequence lengths, YaRN in
several settings, llama3). tests/test_ops.c parses the same config fields with the core's
rope code and compares."""
import json
import os
import sys

import transformers
from transformers import Glm4Config, LlamaConfig
from transformers.models.glm4.modeling_glm4 import Glm4RotaryEmbedding
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

CASES = [
    ("default", {"rope_theta": 10000.0, "partial_rotary_factor": 1.0}, 64, None),
    ("default_partial", {"rope_theta": 1000000.0, "partial_rotary_factor": 0.5}, 128, None),
    ("linear", {"rope_theta": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}, 64, None),
    ("dynamic_long", {"rope_theta": 10000.0, "rope_scaling": {"type": "dynamic", "factor": 2.0}}, 64, 5000),
    ("dynamic_short", {"rope_theta": 10000.0, "rope_scaling": {"type": "dynamic", "factor": 2.0}}, 64, 100),
    ("yarn_qwen", {"rope_theta": 1000000.0,
                   "max_position_embeddings": 131072,
                   "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}},
     128, None),
    ("yarn_mscale", {"rope_theta": 10000.0, "max_position_embeddings": 163840,
                     "rope_scaling": {"rope_type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
                                      "mscale": 1.0, "mscale_all_dim": 0.707, "beta_fast": 16, "beta_slow": 2}},
     64, None),
    ("yarn_notruncate", {"rope_theta": 500000.0, "max_position_embeddings": 65536,
                         "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
                                          "truncate": False, "attention_factor": 1.25}},
     64, None),
    ("llama3", {"rope_theta": 500000.0, "max_position_embeddings": 131072,
                "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
     128, None),
]


def main():
    out = {"transformers_version": transformers.__version__, "cases": []}
    for name, fields, head_dim, seq_len in CASES:
        config_json = dict({"max_position_embeddings": 2048}, head_dim=head_dim,
                           hidden_size=head_dim * 4, num_attention_heads=4, **fields)
        config = LlamaConfig(**json.loads(json.dumps(config_json)))
        config.standardize_rope_params()
        kind = config.rope_parameters.get("rope_type", "default")
        compute = ROPE_INIT_FUNCTIONS.get(kind)
        if compute is None:
            # GLM-4's default RoPE is the one that honours partial_rotary_factor.
            config = Glm4Config(**json.loads(json.dumps(config_json)))
            config.standardize_rope_params()
            inv_freq, attn = Glm4RotaryEmbedding.compute_default_rope_parameters(config)
        else:
            inv_freq, attn = compute(config, None, seq_len)
        out["cases"].append({"name": name, "config": config_json, "head_dim": head_dim,
                             "max_pos": (seq_len - 1) if seq_len else 0,
                             "inv_freq": [float(x) for x in inv_freq.tolist()], "attention_factor": float(attn)})
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "rope_reference.json")
    with open(sys.argv[1] if len(sys.argv) > 1 else path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
