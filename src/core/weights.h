/* Checkpoint weights: the tensors of a model folder, mmap'd read-only and used in place.
 * A folder holds model.safetensors, or shards listed in model.safetensors.index.json
 * ("weight_map": tensor name -> shard file). Every error names the file and, where there is
 * one, the tensor: a truncated file, a header that is not JSON, offsets out of range, a shard
 * named in the index but absent, a missing tensor, a tensor of the wrong shape or dtype. */
#ifndef OM_WEIGHTS_H
#define OM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* One tensor as the file describes it. dtype_name keeps the file's spelling ("BF16", "I64",
 * ...); `supported` is 0 for dtypes ominix cannot compute with, which load fine but cannot be
 * fetched with om_weights_get. Block-quantized dtypes (from GGUF files) are fetched like the
 * others; their shape's last dimension is a whole number of blocks. */
typedef struct om_weight_info {
    const char *name;
    const char *dtype_name;
    int supported;
    om_dtype dtype;
    int ndim;
    int64_t shape[OM_MAX_DIMS];
    const void *data;
    size_t nbytes;
    const char *file; /* path of the file holding it */
} om_weight_info;

typedef struct om_weights om_weights;

/* Opens the safetensors of a model folder (single file or index + shards). */
int om_weights_open_dir(const char *dir, om_weights **out);
/* Opens one .safetensors file. */
int om_weights_open_file(const char *path, om_weights **out);
void om_weights_free(om_weights *w);

size_t om_weights_count(const om_weights *w);
const om_weight_info *om_weights_at(const om_weights *w, size_t i);
/* NULL when absent (no error recorded). */
const om_weight_info *om_weights_find(const om_weights *w, const char *name);
/* Total bytes of the mapped files. */
size_t om_weights_file_bytes(const om_weights *w);

/* The tensor `name` with exactly this shape (ndim entries) as a host tensor over the mapped
 * data. Fails, naming the tensor and its file, when it is missing, has another shape, or has a
 * dtype ominix cannot compute with. */
int om_weights_get(const om_weights *w, const char *name, int ndim, const int64_t *shape, om_tensor *out);
/* Like om_weights_get but a missing tensor is not an error: returns 0 and sets *found = 0. */
int om_weights_get_optional(const om_weights *w, const char *name, int ndim, const int64_t *shape, om_tensor *out,
                            int *found);

/* Weights over tensors that another reader has mapped (the GGUF adapter gives a .gguf file's
 * tensors their Hugging Face names this way). Each info is copied, its name too, and its `file`
 * becomes `file`, which errors then name; the data must stay valid until om_weights_free, which
 * calls release(owner) (release may be NULL). file_size counts in om_weights_file_bytes. A name
 * given twice is an error, and on any error the owner is not released. */
int om_weights_from_list(const char *source, const char *file, size_t file_size, const om_weight_info *infos,
                         size_t n, void *owner, void (*release)(void *owner), om_weights **out);

/* Advises the kernel on a read-only mapping of checkpoint weights (huge pages, read-ahead);
 * used by every checkpoint reader. */
void om_weights_advise(void *map, size_t size);

/* Parses a safetensors header (the JSON after the 8-byte length) for a file of file_size bytes
 * whose data section starts at data_offset. Exposed for the fuzz target and tests; `label`
 * names the file in errors. On success *out holds the parsed tensors (data pointers relative
 * to base, which may be NULL when only parsing). */
int om_safetensors_parse(const uint8_t *file, size_t file_size, const char *label, om_weights **out);

#endif
