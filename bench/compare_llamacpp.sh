#!/usr/bin/env bash
# Prefill and decode speed of one GGUF model in ominix and in llama.cpp, in the same run, on
# the same threads. llama.cpp is not part of ominix: build its llama-bench yourself (for the
# same CPU: -DGGML_NATIVE=ON) and pass its path. Prints both figures and their ratio.
# usage: bench/compare_llamacpp.sh LLAMA_BENCH MODEL.gguf [prompt_tokens] [gen_tokens] [threads]
set -euo pipefail
llama_bench=$1
model=$2
p=${3:-512}
n=${4:-128}
t=${5:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd)
ours=$("$root/build/ominix" bench --model "$model" --prompt-tokens "$p" --gen-tokens "$n" --threads "$t" --json)
theirs=$("$llama_bench" -m "$model" -p "$p" -n "$n" -t "$t" -r 3 -o json 2>/dev/null)
python3 - "$ours" "$theirs" "$p" "$n" "$t" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
p, n, t = sys.argv[3:6]
lc = {("prefill" if r["n_prompt"] else "decode"): r["avg_ts"] for r in theirs}
print(f"model: {ours['model']}  threads: {t}")
print(f"{'':10}{'ominix':>12}{'llama.cpp':>12}{'ratio':>8}")
for name, key in (("prefill", "prefill_tokens_per_s"), ("decode", "decode_tokens_per_s")):
    a, b = ours[key], lc[name]
    print(f"{name + ' t/s':10}{a:12.1f}{b:12.1f}{a / b:8.2f}")
print(f"(prefill {p} tokens, decode {n} tokens; llama.cpp: average of 3 runs of llama-bench)")
PY
