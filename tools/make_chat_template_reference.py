#!/usr/bin/env python3
"""Renders every chat template in tests/data/chat_templates/ over every conversation in
conversations.json with transformers' own apply_chat_template(tokenize=False), and writes the
results to reference.json for tests/test_chat_template.c to compare with byte for byte.

Each template is attached to a throwaway fast tokenizer carrying the special tokens listed in
templates.json, so the rendering goes through exactly the code path a real checkpoint's
tokenizer uses (message normalization, reasoning aliasing, special tokens as variables,
ImmutableSandboxedEnvironment with transformers' tojson / raise_exception / strftime_now).

Cases per template and conversation: add_generation_prompt false and true; for templates with
"thinking_flag" also enable_thinking=false with add_generation_prompt true. Templates may fix
extra variables ("extra" in templates.json, e.g. date_string so that the output does not depend
on today's date). When the template raises, the case records the exception type and message.

Usage: python3 tools/make_chat_template_reference.py [DATA_DIR]
Needs: pip install transformers jinja2 tokenizers
"""
import json
import os
import sys

import jinja2
import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def make_tokenizer(template: str, spec: dict) -> PreTrainedTokenizerFast:
    vocab = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    tokens = {k: spec[k] for k in SPECIAL_TOKENS if spec.get(k) is not None}
    tok = PreTrainedTokenizerFast(tokenizer_object=vocab, **tokens)
    tok.chat_template = template
    return tok


def render(tok, conv: dict, add_generation_prompt: bool, extra: dict) -> dict:
    try:
        out = tok.apply_chat_template(
            conv["messages"],
            tools=conv.get("tools"),
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            **extra,
        )
        return {"output": out}
    except Exception as e:  # the template raised: record what and why
        return {"error_type": type(e).__name__, "error": str(e)}


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data", "chat_templates")
    with open(os.path.join(data, "templates.json"), encoding="utf-8") as f:
        templates = json.load(f)
    with open(os.path.join(data, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)["conversations"]

    cases = []
    for name, spec in templates.items():
        with open(os.path.join(data, name + ".jinja"), encoding="utf-8", newline="") as f:
            template = f.read()
        tok = make_tokenizer(template, spec)
        base_extra = spec.get("extra", {})
        flag_sets = [(False, {}), (True, {})]
        if spec.get("thinking_flag"):
            flag_sets.append((True, {"enable_thinking": False}))
        for conv in conversations:
            for agp, flags in flag_sets:
                extra = {**base_extra, **flags}
                case = {"template": name, "conversation": conv["name"], "add_generation_prompt": agp}
                if extra:
                    case["extra"] = extra
                case.update(render(tok, conv, agp, extra))
                cases.append(case)

    ref = {
        "generator": "tools/make_chat_template_reference.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "special_tokens": {n: {k: v for k, v in s.items() if k in SPECIAL_TOKENS} for n, s in templates.items()},
        "cases": cases,
    }
    out_path = os.path.join(data, "reference.json")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=0)
        f.write("\n")
    errors = sum("error" in c for c in cases)
    print(f"{out_path}: {len(cases)} cases ({errors} raise)")


if __name__ == "__main__":
    main()
