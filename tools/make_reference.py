#!/usr/bin/env python3
"""Tiny random-weight checkpoints and their transformers reference outputs, for the Qwen
(Qwen2, Qwen3, Qwen3-MoE), Llama/Mistral/Mixtral and GLM-4 (GLM-4, GLM-4-MoE) families.

For each architecture in MODELS this script
  1. builds a tiny model with transformers from a config,
  2. randomizes every parameter (projections, embeddings, biases, routers, and the RMSNorm
     weights too, 1 + 0.3*N(0,1)) with a fixed seed, and rounds every parameter to bf16; the
     GLM-4-MoE routers' e_score_correction_bias (a buffer) is randomized too and kept in f32, as
     released checkpoints store it,
  3. saves it as a bf16 safetensors checkpoint in Hugging Face layout under
     tests/data/models/<name>/ (config.json rewritten into the layout published checkpoints of
     that family use, see write_config; generation_config.json; *.safetensors, sharded for
     qwen3),
  4. reloads the saved folder with transformers and checks it reproduces the in-memory model
     exactly (so the file holds the standard per-tensor names and the config parses back to the
     same model),
  5. runs greedy decoding with the float32 model (eager attention) on a few random prompts and
     writes reference.json: for each of 8 steps the full-vocab float32 log_softmax of the last
     position's logits (full recompute of the whole sequence, no KV cache), its top-5 and the
     argmax, which is fed back as the next token.

The float32 model holds exactly the values stored in bf16, so the only difference between an
ominix run and the reference is the arithmetic.

For sliding-window models it also checks that transformers applies the window: the same
weights without a window give the same logits on a prompt within the window and different ones
on a longer prompt.

Usage:  python3 tools/make_reference.py [--out tests/data/models] [--only qwen3,qwen2]
Running it twice gives byte-identical files (fixed seeds, one CPU thread); other torch or
transformers versions or CPUs may change the last digits of the log-probs (~1e-5).
"""

import argparse
import copy
import json
import math
import os
import shutil
import sys

import torch
import transformers
from safetensors import safe_open
from transformers import (
    Glm4Config,
    Glm4ForCausalLM,
    Glm4MoeConfig,
    Glm4MoeForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

NOTE = "float32 compute from bf16-rounded weights, eager attention"
PROMPT_LENGTHS = [1, 7, 523]
STEPS = 8
TOPK = 5

# Common tiny shape. Each entry may override.
BASE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    hidden_act="silu",
)

MODELS = [
    dict(
        name="qwen2",
        cls=(Qwen2Config, Qwen2ForCausalLM),
        seed=1001,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            tie_word_embeddings=False,
            rope_theta=10000.0,
            rope_scaling=None,
            # As in published Qwen2/Qwen2.5 configs: a sliding_window value is present but
            # use_sliding_window is false, so every layer uses full attention.
            use_sliding_window=False,
            sliding_window=4096,
            max_window_layers=3,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="qwen2_tied",
        cls=(Qwen2Config, Qwen2ForCausalLM),
        seed=1002,
        config=dict(
            BASE,
            vocab_size=500,
            num_hidden_layers=2,
            num_key_value_heads=4,
            tie_word_embeddings=True,
            rope_theta=1000000.0,
            # The YaRN entry Qwen2.5 model cards tell users to add for long context,
            # legacy spelling ("type"), scaled down.
            rope_scaling={"factor": 4.0, "original_max_position_embeddings": 256, "type": "yarn"},
            use_sliding_window=False,
            sliding_window=1024,
            max_window_layers=2,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="qwen3",
        cls=(Qwen3Config, Qwen3ForCausalLM),
        seed=1003,
        config=dict(
            BASE,
            vocab_size=640,
            num_hidden_layers=3,
            head_dim=32,  # != hidden_size / num_attention_heads = 16
            attention_bias=False,
            tie_word_embeddings=True,
            rope_theta=1000000.0,
            rope_scaling=None,
            use_sliding_window=False,
            sliding_window=None,
            max_window_layers=3,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=[2, 1], pad_token_id=0),
        max_shard_size="150KB",
    ),
    dict(
        name="qwen3_moe",
        cls=(Qwen3MoeConfig, Qwen3MoeForCausalLM),
        seed=1004,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=4,
            head_dim=32,
            intermediate_size=96,  # dense MLP layers
            moe_intermediate_size=32,  # each expert
            num_experts=8,
            num_experts_per_tok=2,
            norm_topk_prob=True,
            # Sparse where (i+1) % 2 == 0 and i not in mlp_only_layers: layer 1 sparse;
            # layers 0, 2 dense by the step rule, layer 3 dense by mlp_only_layers.
            decoder_sparse_step=2,
            mlp_only_layers=[3],
            attention_bias=False,
            tie_word_embeddings=False,
            rope_theta=10000.0,
            rope_scaling=None,
            use_sliding_window=False,
            sliding_window=None,
            max_window_layers=4,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="qwen3_moe_nonorm",
        cls=(Qwen3MoeConfig, Qwen3MoeForCausalLM),
        seed=1005,
        # Saved in transformers' own config layout (rope_parameters, num_local_experts, dtype,
        # ...) rather than the published-checkpoint layout, so loaders meet both spellings.
        native_config=True,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            head_dim=16,
            num_attention_heads=4,
            num_key_value_heads=1,
            moe_intermediate_size=24,
            num_experts=8,
            num_experts_per_tok=3,
            norm_topk_prob=False,
            decoder_sparse_step=1,  # every layer sparse
            mlp_only_layers=[],
            attention_bias=False,
            tie_word_embeddings=False,
            rope_theta=1000000.0,
            rope_scaling=None,
            use_sliding_window=False,
            sliding_window=None,
            max_window_layers=3,
            bos_token_id=0,
            eos_token_id=2,
        ),
        generation=dict(bos_token_id=0, eos_token_id=2),
    ),
    dict(
        name="llama",
        cls=(LlamaConfig, LlamaForCausalLM),
        seed=1101,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            head_dim=16,
            attention_bias=False,
            mlp_bias=False,
            tie_word_embeddings=False,
            rope_theta=500000.0,
            # Llama 3.1's entry, scaled down so that the 8 frequencies of head_dim 16 fall on
            # all three sides of the llama3 rule (kept, smoothed, divided by factor).
            rope_scaling={
                "factor": 8.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 64,
                "rope_type": "llama3",
            },
            pretraining_tp=1,
            bos_token_id=0,
            eos_token_id=[1, 2],
        ),
        generation=dict(bos_token_id=0, eos_token_id=[1, 2]),
    ),
    dict(
        name="llama_bias",
        cls=(LlamaConfig, LlamaForCausalLM),
        seed=1102,
        # Llama-architecture checkpoints with attention_bias / mlp_bias, head_dim != hidden /
        # heads, tied embeddings, plain RoPE.
        config=dict(
            BASE,
            vocab_size=500,
            num_hidden_layers=2,
            head_dim=32,
            attention_bias=True,
            mlp_bias=True,
            tie_word_embeddings=True,
            rope_theta=10000.0,
            rope_scaling=None,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="mistral",
        cls=(MistralConfig, MistralForCausalLM),
        seed=1201,
        # Mistral 7B v0.1's layout: a sliding window over every layer, here 32 positions, with
        # prompts longer than it besides the long one.
        prompt_lengths=[1, 7, 120, 523],
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            sliding_window=32,
            tie_word_embeddings=False,
            rope_theta=10000.0,
            rope_scaling=None,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="mixtral",
        cls=(MixtralConfig, MixtralForCausalLM),
        seed=1301,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=2,
            intermediate_size=32,  # each expert
            num_local_experts=8,
            num_experts_per_tok=2,
            router_jitter_noise=0.0,
            sliding_window=None,
            tie_word_embeddings=False,
            rms_norm_eps=1e-5,
            rope_theta=1000000.0,
            rope_scaling=None,
            bos_token_id=0,
            eos_token_id=1,
        ),
        generation=dict(bos_token_id=0, eos_token_id=1),
    ),
    dict(
        name="glm4",
        cls=(Glm4Config, Glm4ForCausalLM),
        seed=1401,
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            head_dim=32,
            partial_rotary_factor=0.5,
            attention_bias=True,
            tie_word_embeddings=False,
            rms_norm_eps=1e-5,
            rope_theta=10000.0,
            rope_scaling=None,
            pad_token_id=0,
            eos_token_id=[1, 2, 3],
        ),
        generation=dict(eos_token_id=[1, 2, 3], pad_token_id=0),
    ),
    dict(
        name="glm4_moe",
        cls=(Glm4MoeConfig, Glm4MoeForCausalLM),
        seed=1501,
        # GLM-4.5's layout with every routing option in use: 8 experts in 4 groups, the best 2
        # groups kept, 3 experts per token, 2 shared experts, a dense first layer, scaled
        # weights; q/k norms on.
        config=dict(
            BASE,
            vocab_size=512,
            num_hidden_layers=3,
            head_dim=32,
            partial_rotary_factor=0.5,
            intermediate_size=96,  # the dense layer
            moe_intermediate_size=16,
            n_routed_experts=8,
            num_experts_per_tok=3,
            n_group=4,
            topk_group=2,
            n_shared_experts=2,
            first_k_dense_replace=1,
            routed_scaling_factor=2.5,
            norm_topk_prob=True,
            use_qk_norm=True,
            attention_bias=True,
            tie_word_embeddings=False,
            rms_norm_eps=1e-5,
            rope_theta=1000000.0,
            rope_scaling=None,
            pad_token_id=0,
            eos_token_id=[1, 2],
        ),
        generation=dict(eos_token_id=[1, 2], pad_token_id=0),
        f32_tensors=("e_score_correction_bias",),
    ),
]

# Standard deviations of the random weights. Linear weights use GAIN / sqrt(fan_in); the
# output projection a larger gain so next-token distributions are peaked.
GAIN = 2.0
LM_HEAD_GAIN = 5.0
EMBED_STD = 1.0
BIAS_STD = 0.5
ROUTER_GAIN = 2.0
NORM_STD = 0.3
QK_NORM_SCALE = 2.0
# e_score_correction_bias: comparable to the sigmoid scores it is added to, and mostly
# negative, so that a kept group's experts often score below zero (below a masked-out group's
# expert if masking set scores to 0 rather than -inf).
SCORE_BIAS_MEAN = -0.5
SCORE_BIAS_STD = 0.3


def round_bf16_(p):
    p.data = p.data.to(torch.bfloat16).to(torch.float32)


def randomize(model, seed):
    """Draw every parameter from a fixed-seed normal, then round it to bf16."""
    gen = torch.Generator().manual_seed(seed)
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, p in model.named_parameters():  # shared (tied) parameters appear once
            shape = p.shape
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                # Qwen3 normalizes q and k per head; larger weights make attention sharper
                # than the near-uniform softmax unit-RMS q and k would give.
                val = QK_NORM_SCALE * (1.0 + NORM_STD * torch.randn(shape, generator=gen))
            elif name.endswith("norm.weight"):
                val = 1.0 + NORM_STD * torch.randn(shape, generator=gen)
            elif name.endswith(".bias"):
                val = BIAS_STD * torch.randn(shape, generator=gen)
            elif name == "model.embed_tokens.weight":
                # Tied: the same matrix is the output projection, fan_in = hidden.
                std = LM_HEAD_GAIN / math.sqrt(shape[-1]) if tied else EMBED_STD
                val = std * torch.randn(shape, generator=gen)
            elif name == "lm_head.weight":
                val = LM_HEAD_GAIN / math.sqrt(shape[-1]) * torch.randn(shape, generator=gen)
            elif name.endswith("mlp.gate.weight"):  # MoE router
                val = ROUTER_GAIN / math.sqrt(shape[-1]) * torch.randn(shape, generator=gen)
            else:  # projections, including fused 3-D expert tensors [E, out, in]
                val = GAIN / math.sqrt(shape[-1]) * torch.randn(shape, generator=gen)
            p.copy_(val)
            round_bf16_(p)
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):  # kept in f32 (released checkpoints are)
                b.copy_(SCORE_BIAS_MEAN + SCORE_BIAS_STD * torch.randn(b.shape, generator=gen))


def build(spec):
    cfg_cls, model_cls = spec["cls"]
    cfg = cfg_cls(**copy.deepcopy(spec["config"]))  # transformers edits rope dicts in place
    torch.manual_seed(0)
    model = model_cls._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    randomize(model, spec["seed"])
    return model


def legacy_rope(spec):
    c = spec["config"]
    return c["rope_theta"], c.get("rope_scaling")


def is_qwen(spec):
    return spec["name"].startswith("qwen")


def write_config(spec, out_dir):
    """Rewrite config.json into the layout of the family's published checkpoints.

    transformers 5 writes rope_parameters / dtype / num_local_experts / layer_types; the
    checkpoints users download (made with transformers 4.x) have rope_theta + rope_scaling,
    torch_dtype, no layer_types; Qwen-MoE says num_experts (Mixtral keeps num_local_experts,
    GLM-4-MoE n_routed_experts), GLM-4 a top-level partial_rotary_factor.
    qwen3_moe_nonorm keeps the native layout.
    """
    path = os.path.join(out_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    if not spec.get("native_config"):
        theta, scaling = legacy_rope(spec)
        prf = (cfg.pop("rope_parameters", None) or {}).get("partial_rotary_factor")
        cfg["rope_theta"] = theta
        cfg["rope_scaling"] = scaling
        if prf is not None:
            cfg["partial_rotary_factor"] = prf
        cfg["torch_dtype"] = cfg.pop("dtype", "bfloat16")
        cfg.pop("layer_types", None)
        if is_qwen(spec):
            if "num_local_experts" in cfg:
                cfg["num_experts"] = cfg.pop("num_local_experts")
            # Keep sliding_window as published (a number, ignored since use_sliding_window=false).
            cfg["sliding_window"] = spec["config"].get("sliding_window")
            cfg["use_sliding_window"] = False
        for k in ("pad_token_id",):
            if cfg.get(k) is None:
                cfg.pop(k, None)
    with open(path, "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")


def write_generation_config(spec, out_dir):
    g = dict(spec["generation"])
    g["transformers_version"] = transformers.__version__
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(g, f, indent=2)
        f.write("\n")


def saved_tensors(out_dir):
    """name -> (shape, dtype) over all safetensors files in out_dir."""
    names = {}
    for fn in sorted(os.listdir(out_dir)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(out_dir, fn), "pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    assert k not in names, f"{k} in two shards"
                    names[k] = (tuple(sl.get_shape()), sl.get_dtype(), fn)
    return names


def expected_names(cfg):
    """The tensor names a published checkpoint of this config holds."""
    if not cfg.model_type.startswith("qwen"):
        return expected_names_other(cfg)
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if not cfg.tie_word_embeddings:
        names.append("lm_head.weight")
    is_qwen3 = cfg.model_type in ("qwen3", "qwen3_moe")
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            names.append(p + f"self_attn.{proj}.weight")
        if cfg.model_type == "qwen2":
            names += [p + f"self_attn.{x}_proj.bias" for x in "qkv"]
        elif getattr(cfg, "attention_bias", False):
            names += [p + f"self_attn.{x}_proj.bias" for x in "qkvo"]
        if is_qwen3:
            names += [p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"]
        sparse = (
            cfg.model_type == "qwen3_moe"
            and i not in cfg.mlp_only_layers
            and cfg.num_experts > 0
            and (i + 1) % cfg.decoder_sparse_step == 0
        )
        if sparse:
            names.append(p + "mlp.gate.weight")
            for e in range(cfg.num_experts):
                for proj in ("gate_proj", "up_proj", "down_proj"):
                    names.append(p + f"mlp.experts.{e}.{proj}.weight")
        else:
            for proj in ("gate_proj", "up_proj", "down_proj"):
                names.append(p + f"mlp.{proj}.weight")
    return sorted(names)


def expected_names_other(cfg):
    """expected_names for the Llama/Mistral/Mixtral and GLM-4 families."""
    t = cfg.model_type
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if not cfg.tie_word_embeddings:
        names.append("lm_head.weight")
    gated = ("gate_proj", "up_proj", "down_proj")
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        names += [p + f"self_attn.{x}_proj.weight" for x in "qkvo"]
        if getattr(cfg, "attention_bias", False):
            # Llama biases all four; GLM-4 and GLM-4-MoE q, k and v only.
            names += [p + f"self_attn.{x}_proj.bias" for x in ("qkvo" if t == "llama" else "qkv")]
        if t == "glm4_moe" and cfg.use_qk_norm:
            names += [p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"]
        if t == "mixtral":
            names.append(p + "block_sparse_moe.gate.weight")
            for e in range(cfg.num_local_experts):
                names += [p + f"block_sparse_moe.experts.{e}.{w}.weight" for w in ("w1", "w2", "w3")]
        elif t == "glm4":
            names += [p + "post_self_attn_layernorm.weight", p + "post_mlp_layernorm.weight"]
            names += [p + "mlp.gate_up_proj.weight", p + "mlp.down_proj.weight"]
        elif t == "glm4_moe" and i >= cfg.first_k_dense_replace:
            names += [p + "mlp.gate.weight", p + "mlp.gate.e_score_correction_bias"]
            for e in range(cfg.n_routed_experts):
                names += [p + f"mlp.experts.{e}.{w}.weight" for w in gated]
            names += [p + f"mlp.shared_experts.{w}.weight" for w in gated]
        else:
            names += [p + f"mlp.{w}.weight" for w in gated]
            if getattr(cfg, "mlp_bias", False):
                names += [p + f"mlp.{w}.bias" for w in gated]
    return sorted(names)


@torch.no_grad()
def check_window(spec, model, prompts):
    """The model's sliding window must change the logits exactly where a prompt exceeds it."""
    w = model.config.sliding_window
    assert model.config._attn_implementation == "eager"
    c = copy.deepcopy(spec["config"])
    c["sliding_window"] = None
    cfg_cls, model_cls = spec["cls"]
    full = model_cls._from_config(cfg_cls(**c), attn_implementation="eager", dtype=torch.float32)
    full.load_state_dict(model.state_dict())
    full.eval()
    for _, ids in prompts:
        x = torch.tensor([ids], dtype=torch.long)
        a = model(input_ids=x, use_cache=False).logits
        b = full(input_ids=x, use_cache=False).logits
        same = torch.equal(a[:, :w], b[:, :w])
        d = float((a - b).abs().max())
        if not same or (len(ids) > w and d < 1e-2):
            raise SystemExit(f"{spec['name']}: window {w} not applied as expected ({len(ids)} tokens, max |d| {d})")


@torch.no_grad()
def greedy_case(model, name, prompt_ids):
    ids = list(prompt_ids)
    steps = []
    for _ in range(STEPS):
        x = torch.tensor([ids], dtype=torch.long)
        logits = model(input_ids=x, use_cache=False).logits[0, -1].to(torch.float32)
        lp = torch.log_softmax(logits, dim=-1)
        top_v, top_i = torch.topk(lp, TOPK)
        top_v = [float(v) for v in top_v]
        top_i = [int(i) for i in top_i]
        nxt = int(torch.argmax(lp))
        assert nxt == top_i[0]
        steps.append(
            {
                "id": nxt,
                "logprob": top_v[0],
                "top2_margin": top_v[0] - top_v[1],
                "top_ids": top_i,
                "top_logprobs": top_v,
            }
        )
        ids.append(nxt)
    return {"name": name, "prompt_ids": [int(t) for t in prompt_ids], "steps": steps}


def make_prompts(vocab, seed, lengths=PROMPT_LENGTHS):
    gen = torch.Generator().manual_seed(seed)
    return [(f"len{n}", torch.randint(0, vocab, (n,), generator=gen).tolist()) for n in lengths]


def write_reference(path, arch, cases):
    """reference.json: valid JSON, one step per line so diffs stay readable."""
    d = json.dumps
    lines = [
        "{" + f'"architecture": {d(arch)}, "transformers_version": {d(transformers.__version__)}, '
        f'"torch_version": {d(torch.__version__)},',
        f' "note": {d(NOTE)},',
        ' "cases": [',
    ]
    for ci, c in enumerate(cases):
        lines.append(f'  {{"name": {d(c["name"])}, "prompt_ids": {d(c["prompt_ids"])},')
        lines.append('   "steps": [')
        for si, s in enumerate(c["steps"]):
            comma = "," if si + 1 < len(c["steps"]) else ""
            lines.append("    " + d(s) + comma)
        lines.append("   ]}" + ("," if ci + 1 < len(cases) else ""))
    lines.append(" ]}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path) as f:  # must parse back
        json.load(f)


def make_one(spec, out_root):
    name = spec["name"]
    out_dir = os.path.join(out_root, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    model = build(spec)
    arch = type(model).__name__

    # Save bf16 (a copy, so the f32 model stays for the references).
    save_kw = {}
    if spec.get("max_shard_size"):
        save_kw["max_shard_size"] = spec["max_shard_size"]
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    # Tensors released checkpoints keep in f32 (named by suffix) go back to their f32 values.
    f32_names = spec.get("f32_tensors", ())
    if f32_names:
        with torch.no_grad():
            for (n, b), (_, src) in zip(bf16.named_buffers(), model.named_buffers()):
                if n.endswith(f32_names):
                    b.data = src.data.clone()
    bf16.save_pretrained(out_dir, safe_serialization=True, **save_kw)
    del bf16
    write_config(spec, out_dir)
    write_generation_config(spec, out_dir)

    # The file must hold the standard per-tensor checkpoint names, all bf16.
    tensors = saved_tensors(out_dir)
    exp = expected_names(model.config)
    if sorted(tensors) != exp:
        missing = sorted(set(exp) - set(tensors))
        extra = sorted(set(tensors) - set(exp))
        raise SystemExit(f"{name}: tensor names differ: missing {missing[:8]} extra {extra[:8]}")
    want_dtype = {k: "F32" if f32_names and k.endswith(f32_names) else "BF16" for k in tensors}
    bad = [k for k, (_, dt, _) in tensors.items() if dt != want_dtype[k]]
    if bad:
        raise SystemExit(f"{name}: tensors of an unexpected dtype {bad[:5]}")
    nshards = len({fn for (_, _, fn) in tensors.values()})
    if spec.get("max_shard_size"):
        assert os.path.exists(os.path.join(out_dir, "model.safetensors.index.json"))
        assert 2 <= nshards <= 3, f"{name}: {nshards} shards"

    # Reload the folder: same config semantics, same weights, bit-identical logits.
    prompts = make_prompts(model.config.vocab_size, spec["seed"] + 77, spec.get("prompt_lengths", PROMPT_LENGTHS))
    _, model_cls = spec["cls"]
    re = model_cls.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager")
    re.eval()
    with torch.no_grad():
        x = torch.tensor([prompts[-1][1]], dtype=torch.long)
        a = model(input_ids=x, use_cache=False).logits
        b = re(input_ids=x, use_cache=False).logits
    ra, rb = model.model.rotary_emb, re.model.rotary_emb
    scaling = spec["config"].get("rope_scaling") or {}
    want = scaling.get("rope_type", scaling.get("type", "default"))
    if not (ra.rope_type == rb.rope_type == want and ra.attention_scaling == rb.attention_scaling
            and torch.equal(ra.inv_freq, rb.inv_freq)):
        raise SystemExit(f"{name}: RoPE differs after reload: {ra.rope_type} {rb.rope_type} want {want}")
    if not torch.equal(a, b):
        raise SystemExit(f"{name}: reloaded checkpoint differs, max |d| {float((a - b).abs().max())}")
    del re
    if getattr(model.config, "sliding_window", None) and not is_qwen(spec):
        check_window(spec, model, prompts)

    cases = [greedy_case(model, n, p) for n, p in prompts]
    write_reference(os.path.join(out_dir, "reference.json"), arch, cases)

    margins = [s["top2_margin"] for c in cases for s in c["steps"]]
    # Greedy references ignore EOS; keep EOS out of them so a generation loop that stops at
    # EOS produces the same tokens.
    eos = spec["generation"]["eos_token_id"]
    eos = set(eos if isinstance(eos, list) else [eos])
    hits_eos = sum(1 for c in cases for s in c["steps"] if s["id"] in eos)
    if hits_eos:
        raise SystemExit(f"{name}: EOS {sorted(eos)} appears in the references; pick another EOS id")
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(
        f"{name:18s} {arch:22s} params {sum(p.numel() for p in model.parameters()):7d} "
        f"files {size / 1024:7.1f} KiB shards {nshards}  margin>=1e-3: "
        f"{sum(m >= 1e-3 for m in margins)}/{len(margins)}  min margin {min(margins):.2e}  "
        f"eos steps {hits_eos}"
    )
    for c in cases:
        print(f"    {c['name']:7s} ids {[s['id'] for s in c['steps']]} "
              f"margins {[round(s['top2_margin'], 3) for s in c['steps']]}")
    return margins


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "models"))
    ap.add_argument("--only", default="", help="comma-separated model names")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # float sums then do not depend on the machine's core count
    only = set(filter(None, args.only.split(",")))
    allm = []
    for spec in MODELS:
        if only and spec["name"] not in only:
            continue
        allm += make_one(spec, os.path.normpath(args.out))
    ok = sum(m >= 1e-3 for m in allm)
    print(f"all: {ok}/{len(allm)} steps ({100.0 * ok / len(allm):.1f}%) with top2_margin >= 1e-3")


if __name__ == "__main__":
    sys.exit(main())
