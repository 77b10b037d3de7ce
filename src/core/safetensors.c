/* The safetensors checkpoint reader (see weights.h).
 *
 * A .safetensors file is an 8-byte little-endian header length N, N bytes of JSON
 *     {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *      "__metadata__": {...}}
 * and then the data section, which the offsets index. Files are mmap'd read-only and tensors
 * point straight into the mapping: a model's weights are never copied on load, and pages the
 * model never touches are never read.
 *
 * Everything in the header is untrusted: each field is type-checked, every size is computed
 * with overflow checks and every offset is checked against the data section before a pointer
 * is formed, so that a corrupt or hostile file yields a one-line error naming the file and the
 * tensor instead of a crash. om_safetensors_parse is the entry point the fuzz target drives.
 *
 * Names are looked up through an open-addressing hash table (models have ~10k tensors and
 * families look each one up by name). */
#include "core/weights.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/json_util.h"

/* Real headers are well under 10 MB even for 100k-tensor checkpoints; a larger length field
 * means the file is not safetensors (or is corrupt), and we refuse before parsing it. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* Offsets and dimensions above 2^53 cannot be exact in a JSON number parsed as a double. */
#define ST_MAX_JSON_INT ((int64_t)1 << 53)

typedef struct st_dtype {
    const char *name;
    int bits; /* per element; the 6- and 4-bit float formats pack several per byte */
    int supported;
    om_dtype dtype;
} st_dtype;

/* The dtypes of the safetensors format. Those ominix cannot compute with still parse, so that
 * a checkpoint carrying e.g. an I64 position-id buffer loads; fetching one is the error. */
static const st_dtype st_dtypes[] = {
    {"F32", 32, 1, OM_F32},
    {"F16", 16, 1, OM_F16},
    {"BF16", 16, 1, OM_BF16},
    {"F64", 64, 0, OM_DTYPE_COUNT},
    {"I64", 64, 0, OM_DTYPE_COUNT},
    {"U64", 64, 0, OM_DTYPE_COUNT},
    {"I32", 32, 0, OM_DTYPE_COUNT},
    {"U32", 32, 0, OM_DTYPE_COUNT},
    {"I16", 16, 0, OM_DTYPE_COUNT},
    {"U16", 16, 0, OM_DTYPE_COUNT},
    {"I8", 8, 0, OM_DTYPE_COUNT},
    {"U8", 8, 0, OM_DTYPE_COUNT},
    {"BOOL", 8, 0, OM_DTYPE_COUNT},
    {"F8_E4M3", 8, 0, OM_DTYPE_COUNT},
    {"F8_E5M2", 8, 0, OM_DTYPE_COUNT},
    {"F8_E8M0", 8, 0, OM_DTYPE_COUNT},
    {"F6_E2M3", 6, 0, OM_DTYPE_COUNT},
    {"F6_E3M2", 6, 0, OM_DTYPE_COUNT},
    {"F4", 4, 0, OM_DTYPE_COUNT},
    {"C64", 64, 0, OM_DTYPE_COUNT},
};

static const st_dtype *st_dtype_find(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

/* One opened file. `map` is NULL for buffers handed to om_safetensors_parse, which the caller
 * owns. */
typedef struct st_file {
    char *path;
    void *map;
    size_t size;
} st_file;

struct om_weights {
    char *source; /* "model folder X" or the file's path: what "missing tensor" errors name */
    st_file *files;
    size_t nfiles, files_cap;
    om_weight_info *infos;
    size_t count, cap;
    uint32_t *slots; /* hash table: index into infos + 1; 0 is an empty slot */
    size_t nslots;   /* a power of two, or 0 */
    void *owner;     /* om_weights_from_list: what keeps the data mapped, released on free */
    void (*release)(void *owner);
};

/* ---- name table ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static const om_weight_info *table_find(const om_weights *w, const char *name) {
    if (w->nslots == 0) return NULL;
    size_t mask = w->nslots - 1;
    for (size_t i = (size_t)hash_name(name) & mask;; i = (i + 1) & mask) {
        uint32_t s = w->slots[i];
        if (s == 0) return NULL;
        if (strcmp(w->infos[s - 1].name, name) == 0) return &w->infos[s - 1];
    }
}

static void table_put(uint32_t *slots, size_t nslots, const char *name, uint32_t value) {
    size_t mask = nslots - 1;
    size_t i = (size_t)hash_name(name) & mask;
    while (slots[i] != 0) i = (i + 1) & mask;
    slots[i] = value;
}

/* Makes room for one more name, keeping the load factor at most 1/2 so probes stay short. */
static int table_reserve(om_weights *w) {
    if ((w->count + 1) * 2 <= w->nslots) return 0;
    if (w->count >= UINT32_MAX / 4) return om_errorf("%s: too many tensors", w->source);
    size_t n = w->nslots ? w->nslots * 2 : 64;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return om_errorf("%s: out of memory", w->source);
    for (size_t i = 0; i < w->count; i++) table_put(slots, n, w->infos[i].name, (uint32_t)(i + 1));
    free(w->slots);
    w->slots = slots;
    w->nslots = n;
    return 0;
}

/* ---- the container ---- */

static om_weights *weights_new(const char *source) {
    om_weights *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->source = strdup(source);
    if (!w->source) {
        free(w);
        return NULL;
    }
    return w;
}

void om_weights_free(om_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nfiles; i++) {
        if (w->files[i].map) munmap(w->files[i].map, w->files[i].size);
        free(w->files[i].path);
    }
    for (size_t i = 0; i < w->count; i++) free((char *)w->infos[i].name);
    free(w->files);
    free(w->infos);
    free(w->slots);
    free(w->source);
    if (w->release) w->release(w->owner);
    free(w);
}

/* Appends a file record; its path string is what every tensor of the file points at. */
static st_file *add_file(om_weights *w, const char *path) {
    if (w->nfiles == w->files_cap) {
        size_t cap = w->files_cap ? w->files_cap * 2 : 4;
        st_file *files = realloc(w->files, cap * sizeof *files);
        if (!files) return NULL;
        w->files = files;
        w->files_cap = cap;
    }
    st_file *f = &w->files[w->nfiles];
    f->path = strdup(path);
    if (!f->path) return NULL;
    f->map = NULL;
    f->size = 0;
    w->nfiles++;
    return f;
}

/* ---- header parsing ---- */

static int st_uint(const cJSON *v, uint64_t *out) {
    int64_t i;
    if (!om_json_as_int(v, &i) || i < 0 || i > ST_MAX_JSON_INT) return 0;
    *out = (uint64_t)i;
    return 1;
}

/* Validates one header entry and appends it to w. `label` is the file's path as stored in w
 * (tensors keep pointing at it). */
static int parse_entry(om_weights *w, const cJSON *entry, const char *label, const uint8_t *data, size_t data_size) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) return om_errorf("%s: tensor '%s': entry is not a JSON object", label, name);

    const cJSON *jdtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!jdtype) return om_errorf("%s: tensor '%s': missing field 'dtype'", label, name);
    if (!cJSON_IsString(jdtype)) return om_errorf("%s: tensor '%s': field 'dtype' must be a string", label, name);
    const st_dtype *dt = st_dtype_find(jdtype->valuestring);
    if (!dt) return om_errorf("%s: tensor '%s': unknown dtype '%.40s'", label, name, jdtype->valuestring);

    const cJSON *jshape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!jshape) return om_errorf("%s: tensor '%s': missing field 'shape'", label, name);
    if (!cJSON_IsArray(jshape)) return om_errorf("%s: tensor '%s': field 'shape' must be an array", label, name);
    int ndim = cJSON_GetArraySize(jshape);
    if (ndim > OM_MAX_DIMS)
        return om_errorf("%s: tensor '%s': shape has %d dimensions; at most %d are supported", label, name, ndim,
                         OM_MAX_DIMS);
    int64_t shape[OM_MAX_DIMS] = {0};
    /* Element count in uint64 with overflow checks: dims up to 2^53 each can overflow it. */
    uint64_t nelem = 1;
    int overflow = 0;
    int d = 0;
    const cJSON *jdim;
    cJSON_ArrayForEach(jdim, jshape) {
        uint64_t dim;
        if (!st_uint(jdim, &dim))
            return om_errorf("%s: tensor '%s': shape[%d] must be a non-negative integer", label, name, d);
        shape[d++] = (int64_t)dim;
        if (dim != 0 && nelem > UINT64_MAX / dim) overflow = 1;
        else nelem *= dim;
    }

    const cJSON *joff = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!joff) return om_errorf("%s: tensor '%s': missing field 'data_offsets'", label, name);
    uint64_t begin, end;
    if (!cJSON_IsArray(joff) || cJSON_GetArraySize(joff) != 2 || !st_uint(joff->child, &begin) ||
        !st_uint(joff->child->next, &end))
        return om_errorf("%s: tensor '%s': field 'data_offsets' must be two non-negative integers [begin, end]", label,
                         name);
    if (begin > end)
        return om_errorf("%s: tensor '%s': data_offsets [%llu, %llu] begin after end", label, name,
                         (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return om_errorf("%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %zu bytes)", label,
                         name, (unsigned long long)begin, (unsigned long long)end, data_size);

    uint64_t nbytes = end - begin;
    char sbuf[128];
    /* Sub-byte dtypes must fill whole bytes, so compare bits rather than bytes. */
    if (overflow || nelem > UINT64_MAX / (uint64_t)dt->bits)
        return om_errorf("%s: tensor '%s': shape %s of %s is too large", label, name,
                         om_shape_str(shape, ndim, sbuf, sizeof sbuf), dt->name);
    uint64_t bits = nelem * (uint64_t)dt->bits;
    if (bits % 8 != 0 || bits / 8 != nbytes)
        return om_errorf("%s: tensor '%s': shape %s of %s needs %llu bits but data_offsets [%llu, %llu] hold %llu bytes",
                         label, name, om_shape_str(shape, ndim, sbuf, sizeof sbuf), dt->name, (unsigned long long)bits,
                         (unsigned long long)begin, (unsigned long long)end, (unsigned long long)nbytes);

    const om_weight_info *dup = table_find(w, name);
    if (dup) {
        if (dup->file == label) return om_errorf("%s: tensor '%s' appears twice in the header", label, name);
        return om_errorf("%s: tensor '%s' is also in %s", label, name, dup->file);
    }
    if (table_reserve(w) != 0) return -1;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        om_weight_info *infos = realloc(w->infos, cap * sizeof *infos);
        if (!infos) return om_errorf("%s: out of memory", label);
        w->infos = infos;
        w->cap = cap;
    }
    om_weight_info *info = &w->infos[w->count];
    memset(info, 0, sizeof *info);
    info->name = strdup(name);
    if (!info->name) return om_errorf("%s: out of memory", label);
    info->dtype_name = dt->name;
    info->supported = dt->supported;
    info->dtype = dt->dtype;
    info->ndim = ndim;
    memcpy(info->shape, shape, sizeof shape);
    info->data = data + begin;
    info->nbytes = (size_t)nbytes;
    info->file = label;
    w->count++;
    table_put(w->slots, w->nslots, info->name, (uint32_t)w->count);
    return 0;
}

/* Parses the header of the file f->path whose bytes are file[0..size) and appends its tensors
 * to w. */
static int parse_file(om_weights *w, const st_file *f, const uint8_t *file, size_t size) {
    const char *label = f->path;
    if (size < 8)
        return om_errorf("%s: file is %zu bytes, too short for a safetensors header (at least 8)", label, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | file[i];
    if (n > ST_MAX_HEADER)
        return om_errorf("%s: header length %llu is over 100 MB; not a safetensors file?", label,
                         (unsigned long long)n);
    if (n > size - 8)
        return om_errorf("%s: header length %llu runs past the end of the file (%zu bytes)", label,
                         (unsigned long long)n, size);

    char hlabel[4200];
    snprintf(hlabel, sizeof hlabel, "%s: header", label);
    cJSON *root;
    if (om_json_parse_buffer((const char *)file + 8, (size_t)n, hlabel, &root) != 0) return -1;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return om_errorf("%s: header is not a JSON object", label);
    }
    const uint8_t *data = file + 8 + n;
    size_t data_size = size - 8 - (size_t)n;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        /* Free-form string metadata ({"format": "pt"}); nothing in it matters for loading. */
        if (strcmp(entry->string, "__metadata__") == 0) continue;
        if (parse_entry(w, entry, label, data, data_size) != 0) {
            cJSON_Delete(root);
            return -1;
        }
    }
    cJSON_Delete(root);
    return 0;
}

int om_safetensors_parse(const uint8_t *file, size_t file_size, const char *label, om_weights **out) {
    *out = NULL;
    om_weights *w = weights_new(label);
    st_file *f = w ? add_file(w, label) : NULL;
    if (!f) {
        om_weights_free(w);
        return om_errorf("%s: out of memory", label);
    }
    f->size = file_size;
    if (parse_file(w, f, file_size ? file : (const uint8_t *)"", file_size) != 0) {
        om_weights_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* ---- files and folders ---- */

/* Maps `path` and appends its tensors to w. */
static int load_file(om_weights *w, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return om_errorf("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return om_errorf("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return om_errorf("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        /* Checked here as well as in parse_file because mmap of an empty file fails. */
        close(fd);
        return om_errorf("%s: file is %zu bytes, too short for a safetensors header (at least 8)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return om_errorf("%s: cannot mmap %zu bytes: %s", path, size, strerror(e));
    om_weights_advise(map, size);
    st_file *f = add_file(w, path);
    if (!f) {
        munmap(map, size);
        return om_errorf("%s: out of memory", path);
    }
    f->map = map;
    f->size = size;
    return parse_file(w, f, map, size);
}

void om_weights_advise(void *map, size_t size) {
    /* Every decode step streams all weights: ask for huge pages where the file system can give
     * them (fewer TLB misses), and read-ahead. Advice only; failure changes nothing. */
    (void)madvise(map, size, MADV_HUGEPAGE);
    (void)madvise(map, size, MADV_WILLNEED);
}

int om_weights_open_file(const char *path, om_weights **out) {
    *out = NULL;
    om_weights *w = weights_new(path);
    if (!w) return om_errorf("%s: out of memory", path);
    if (load_file(w, path) != 0) {
        om_weights_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

static void join(char *buf, size_t size, const char *dir, const char *name) {
    size_t n = strlen(dir);
    snprintf(buf, size, "%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Shards must be plain names in the folder: an index must not send us elsewhere on disk. */
static int plain_file_name(const char *s) {
    return s[0] && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Loads every distinct shard that the index at dir/index_name names, then checks that each
 * tensor the index lists is in the shard it says. */
static int load_index(om_weights *w, const char *dir, const char *index_name) {
    char index_path[4096];
    join(index_path, sizeof index_path, dir, index_name);
    cJSON *root;
    if (om_json_read_file(index_path, &root) != 0) return -1;
    int rc = -1;
    const char **shards = NULL;
    size_t nshards = 0;
    const cJSON *map = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        om_errorf("%s: no \"weight_map\" object", index_path);
        goto done;
    }
    int nentries = cJSON_GetArraySize(map);
    if (nentries == 0) {
        om_errorf("%s: \"weight_map\" is empty", index_path);
        goto done;
    }
    shards = malloc((size_t)nentries * sizeof *shards);
    if (!shards) {
        om_errorf("%s: out of memory", index_path);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e)) {
            om_errorf("%s: weight_map entry for tensor '%s' must be a file name", index_path, e->string);
            goto done;
        }
        if (!plain_file_name(e->valuestring)) {
            om_errorf("%s: tensor '%s': shard '%s' is not a file name in the model folder", index_path, e->string,
                      e->valuestring);
            goto done;
        }
        /* Checkpoints have a few to a few hundred shards and list tensors shard by shard, so
         * a check against the last one seen, then a linear scan, is plenty. */
        if (nshards && strcmp(shards[nshards - 1], e->valuestring) == 0) continue;
        size_t i = 0;
        while (i < nshards && strcmp(shards[i], e->valuestring) != 0) i++;
        if (i == nshards) shards[nshards++] = e->valuestring;
    }
    for (size_t i = 0; i < nshards; i++) {
        char path[4096];
        join(path, sizeof path, dir, shards[i]);
        if (!file_exists(path) && access(path, F_OK) != 0) {
            om_errorf("%s: shard named in %s is missing: %s", path, index_name, strerror(errno));
            goto done;
        }
        if (load_file(w, path) != 0) goto done;
    }
    cJSON_ArrayForEach(e, map) {
        const om_weight_info *info = table_find(w, e->string);
        char path[4096];
        join(path, sizeof path, dir, e->valuestring);
        if (!info) {
            om_errorf("%s: tensor '%s' is listed in %s but %s does not have it", path, e->string, index_name,
                      e->valuestring);
            goto done;
        }
        if (strcmp(info->file, path) != 0) {
            om_errorf("%s: tensor '%s' is listed in shard %s but is in %s", index_path, e->string, e->valuestring,
                      info->file);
            goto done;
        }
    }
    rc = 0;
done:
    free(shards);
    cJSON_Delete(root);
    return rc;
}

/* What a folder without model.safetensors[.index.json] holds: its other *.safetensors and
 * *.safetensors.index.json files (diffusers writes diffusion_pytorch_model.safetensors, Mistral
 * consolidated.safetensors). Names are copied into the caller's buffers; counts are exact,
 * names kept up to the buffers' size. */
typedef struct dir_scan {
    char files[3][256];
    int nfiles;
    char index[256];
    int nindex;
} dir_scan;

static int scan_dir(const char *dir, const char *source, dir_scan *s) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    if (!d) return om_errorf("%s: cannot list: %s", source, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.') continue; /* ., .., and hidden files such as macOS "._x" forks */
        char path[4096];
        join(path, sizeof path, dir, n);
        if (!file_exists(path)) continue;
        if (ends_with(n, ".safetensors.index.json")) {
            if (s->nindex == 0) snprintf(s->index, sizeof s->index, "%s", n);
            s->nindex++;
        } else if (ends_with(n, ".safetensors")) {
            if (s->nfiles < 3) snprintf(s->files[s->nfiles], sizeof s->files[0], "%s", n);
            s->nfiles++;
        }
    }
    closedir(d);
    return 0;
}

static int open_dir_into(om_weights *w, const char *dir) {
    char path[4096];
    join(path, sizeof path, dir, "model.safetensors.index.json");
    if (file_exists(path)) return load_index(w, dir, "model.safetensors.index.json");
    join(path, sizeof path, dir, "model.safetensors");
    if (file_exists(path)) return load_file(w, path);

    dir_scan s;
    if (scan_dir(dir, w->source, &s) != 0) return -1;
    if (s.nindex == 1) return load_index(w, dir, s.index);
    if (s.nindex > 1)
        return om_errorf("%s: %d *.safetensors.index.json files and no model.safetensors.index.json; which one?",
                         w->source, s.nindex);
    if (s.nfiles == 1) {
        join(path, sizeof path, dir, s.files[0]);
        return load_file(w, path);
    }
    if (s.nfiles > 1)
        return om_errorf("%s: %d .safetensors files (%s, %s%s) but no model.safetensors.index.json saying which "
                         "tensor is where",
                         w->source, s.nfiles, s.files[0], s.files[1], s.nfiles > 2 ? ", ..." : "");
    return om_errorf("%s: no model.safetensors, model.safetensors.index.json or other .safetensors file", w->source);
}

int om_weights_open_dir(const char *dir, om_weights **out) {
    *out = NULL;
    char source[4200];
    snprintf(source, sizeof source, "model folder %s", dir);
    struct stat st;
    if (stat(dir, &st) != 0) return om_errorf("%s: cannot open: %s", source, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return om_errorf("%s: not a directory", source);
    om_weights *w = weights_new(source);
    if (!w) return om_errorf("%s: out of memory", source);
    if (open_dir_into(w, dir) != 0) {
        om_weights_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* ---- queries ---- */

size_t om_weights_count(const om_weights *w) { return w->count; }

const om_weight_info *om_weights_at(const om_weights *w, size_t i) { return i < w->count ? &w->infos[i] : NULL; }

const om_weight_info *om_weights_find(const om_weights *w, const char *name) { return table_find(w, name); }

size_t om_weights_file_bytes(const om_weights *w) {
    size_t n = 0;
    for (size_t i = 0; i < w->nfiles; i++) n += w->files[i].size;
    return n;
}

/* Checks a found tensor against the request and makes the host tensor over its data. */
static int get_found(const om_weight_info *info, int ndim, const int64_t *shape, om_tensor *out) {
    char have[128], want[128];
    if (!info->supported)
        return om_errorf("%s: tensor '%s' has dtype %s, which ominix cannot compute with", info->file, info->name,
                         info->dtype_name);
    if (ndim < 0 || ndim > OM_MAX_DIMS)
        return om_errorf("%s: tensor '%s': asked for %d dimensions", info->file, info->name, ndim);
    int same = ndim == info->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == info->shape[i];
    if (!same)
        return om_errorf("%s: tensor '%s' has shape %s, expected %s", info->file, info->name,
                         om_shape_str(info->shape, info->ndim, have, sizeof have),
                         om_shape_str(shape, ndim, want, sizeof want));
    /* Kernels read elements through typed pointers. Writers pad the header so that data is
     * aligned; a file that is not cannot be used in place. Block-quantized rows need only the
     * alignment of their f16 scales: a row of an odd number of Q8_0 blocks is 2-aligned. */
    size_t esize = om_dtype_is_quantized(info->dtype) ? 2 : om_dtype_size(info->dtype);
    if ((uintptr_t)info->data % esize != 0)
        return om_errorf("%s: tensor '%s': data is not aligned to %zu bytes (header not padded?)", info->file,
                         info->name, esize);
    *out = om_tensor_view((void *)info->data, info->dtype, ndim, shape);
    return 0;
}

int om_weights_get(const om_weights *w, const char *name, int ndim, const int64_t *shape, om_tensor *out) {
    const om_weight_info *info = table_find(w, name);
    if (!info) return om_errorf("%s: missing tensor '%s'", w->source, name);
    return get_found(info, ndim, shape, out);
}

int om_weights_get_optional(const om_weights *w, const char *name, int ndim, const int64_t *shape, om_tensor *out,
                            int *found) {
    const om_weight_info *info = table_find(w, name);
    *found = info != NULL;
    if (!info) return 0;
    return get_found(info, ndim, shape, out);
}

/* ---- weights over another reader's tensors ---- */

int om_weights_from_list(const char *source, const char *file, size_t file_size, const om_weight_info *infos,
                         size_t n, void *owner, void (*release)(void *owner), om_weights **out) {
    *out = NULL;
    om_weights *w = weights_new(source);
    st_file *f = w ? add_file(w, file) : NULL;
    if (!f) {
        om_weights_free(w);
        return om_errorf("%s: out of memory", file);
    }
    f->size = file_size; /* f->map stays NULL: the owner unmaps */
    w->infos = calloc(n ? n : 1, sizeof *w->infos);
    if (!w->infos) {
        om_weights_free(w);
        return om_errorf("%s: out of memory", file);
    }
    w->cap = n ? n : 1;
    for (size_t i = 0; i < n; i++) {
        if (table_find(w, infos[i].name)) {
            om_errorf("%s: tensor '%s' appears twice", file, infos[i].name);
            om_weights_free(w);
            return -1;
        }
        if (table_reserve(w) != 0) {
            om_weights_free(w);
            return -1;
        }
        om_weight_info *info = &w->infos[w->count];
        *info = infos[i];
        info->name = strdup(infos[i].name);
        if (!info->name) {
            om_weights_free(w);
            return om_errorf("%s: out of memory", file);
        }
        info->file = f->path;
        w->count++;
        table_put(w->slots, w->nslots, info->name, (uint32_t)w->count);
    }
    w->owner = owner;
    w->release = release;
    *out = w;
    return 0;
}
