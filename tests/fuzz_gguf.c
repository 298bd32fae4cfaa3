/* libFuzzer harness for the GGUF reader: open the input, then touch everything the reader hands
   out (every key through the typed getters, every string of every string array, the first and
   last byte of every tensor, a copy of every KV into a writer), so ASan sees any pointer that
   escapes the input.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_gguf.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

static volatile unsigned sink;

static void touch(const void *p, uint64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    if (n) sink += b[0] + b[n - 1];
}

/* key as a NUL-terminated copy, or NULL when it holds a NUL (then lookups cannot name it) */
static char *cstr(ds_str s) {
    char *c;
    if (memchr(s.ptr, 0, s.len)) return NULL;
    c = (char *)malloc(s.len + 1);
    memcpy(c, s.ptr, s.len);
    c[s.len] = 0;
    return c;
}

static void walk_kv(const ds_gguf *g, const ds_gguf_kv *kv) {
    char *key = cstr(kv->key);
    uint32_t u32;
    int32_t i32;
    uint64_t u64, n;
    int64_t i64;
    float f;
    int b;
    ds_str s;
    ds_gguf_type et;
    const void *data;
    touch(kv->key.ptr, kv->key.len);
    if (!key) return;
    if (ds_gguf_find(g, key) != kv) abort();
    sink += (unsigned)ds_gguf_get_u32(g, key, &u32) + (unsigned)ds_gguf_get_i32(g, key, &i32) + (unsigned)ds_gguf_get_u64(g, key, &u64);
    sink += (unsigned)ds_gguf_get_i64(g, key, &i64) + (unsigned)ds_gguf_get_f32(g, key, &f) + (unsigned)ds_gguf_get_bool(g, key, &b);
    if (ds_gguf_get_str(g, key, &s) == DS_OK) touch(s.ptr, s.len);
    if (ds_gguf_get_arr(g, key, &et, &n, &data) == DS_OK) {
        if (et == DS_GGUF_STRING) {
            ds_str *strs = (ds_str *)malloc((size_t)n * sizeof *strs + 1);
            uint64_t i;
            if (ds_gguf_get_arr_str(g, key, strs, n) != DS_OK) abort();
            for (i = 0; i < n; i++) touch(strs[i].ptr, strs[i].len);
            free(strs);
        } else {
            touch(data, n * (uint64_t)(et == DS_GGUF_U8 || et == DS_GGUF_I8 || et == DS_GGUF_BOOL ? 1 : et == DS_GGUF_U16 || et == DS_GGUF_I16 ? 2 : et == DS_GGUF_U64 || et == DS_GGUF_I64 || et == DS_GGUF_F64 ? 8 : 4));
        }
    }
    free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_gguf *g = NULL;
    int64_t i;
    /* an exact-size copy: ASan then flags any read past the end */
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    if (ds_gguf_open_memory(copy, size, &g) != DS_OK) {
        if (g || !ds_last_error()[0]) abort();   /* failures leave nothing and say why */
        free(copy);
        return 0;
    }
    for (i = 0; i < ds_gguf_n_kv(g); i++) walk_kv(g, ds_gguf_kv_at(g, i));
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        char *name = cstr(t->name);
        touch(t->data, t->nbytes);
        if (name && ds_gguf_find_tensor(g, name) != t) abort();
        free(name);
    }
    {   /* copying every KV into a writer re-walks each encoded value */
        ds_gguf_writer *w = NULL;
        if (ds_gguf_writer_create(&w) != DS_OK || ds_gguf_writer_copy_kv(w, g) != DS_OK) abort();
        ds_gguf_writer_free(w);
    }
    ds_gguf_free(g);
    free(copy);
    return 0;
}
