/* The GGUF -> Hugging Face adapter: turns a llama.cpp checkpoint (core/gguf.h) into what the
 * model families already load, so that they need no GGUF code of their own:
 *   - config.json's fields and model_type, from the {arch}.* metadata;
 *   - the tensors under Hugging Face names (blk.3.attn_q.weight ->
 *     model.layers.3.self_attn.q_proj.weight), as views into the mapped file: stacked expert
 *     tensors become one 2-D view per expert, fused attn_qkv three row ranges, nothing is copied;
 *   - tokenizer.json and tokenizer_config.json (special tokens, chat template), from the
 *     tokenizer.ggml.* metadata.
 * It knows llama.cpp's architecture names, so it lives in the model layer; the core reaches it
 * through om_checkpoint_open_gguf (core/model.h). The pieces are public for the tests. */
#ifndef OM_GGUF_ADAPTER_H
#define OM_GGUF_ADAPTER_H

#include <cjson/cJSON.h>

#include "core/gguf.h"
#include "core/weights.h"

/* config.json's equivalent (caller frees). Architectures: llama (model_type "llama", or
 * "mixtral" with experts), qwen2, qwen3, qwen3moe ("qwen3_moe"), glm4, glm4moe ("glm4_moe"). */
int om_gguf_to_config(const om_gguf *g, cJSON **out);

/* tokenizer.json and tokenizer_config.json equivalents (caller frees both); both NULL when the
 * file has no tokenizer.ggml.tokens. tokenizer.ggml.model "gpt2" (byte-level BPE, with the
 * pre-tokenizer chosen by tokenizer.ggml.pre as llama.cpp chooses it) and "llama"
 * (SentencePiece, merges derived from the scores) are supported; an embedded
 * tokenizer.huggingface.json is used as it is. */
int om_gguf_to_tokenizer(const om_gguf *g, cJSON **tokenizer_json, cJSON **tokenizer_config);

/* The file's tensors under Hugging Face names for the model config (from om_gguf_to_config)
 * describes. On success the weights own g (freed with them); on failure g stays the caller's. */
int om_gguf_to_weights(om_gguf *g, const cJSON *config, om_weights **out);

#endif
