/* libFuzzer harness for the safetensors reader: open the input, then touch everything the reader
   hands out (each name, dtype, the first and last byte of each tensor's data, each metadata key
   and value), look every name up again, and write what was read back out through the writer, so
   ASan sees any pointer that escapes the input.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_safetensors.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

static volatile unsigned sink;

static void touch(const void *p, uint64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    if (n) sink += b[0] + b[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_safetensors *st = NULL;
    ds_st_write *w;
    int64_t i, n;
    int k, nw = 0;
    if (ds_safetensors_open_memory(data, size, &st) != DS_OK) {
        if (st) abort();
        return 0;
    }
    n = ds_safetensors_n_tensors(st);
    w = (ds_st_write *)calloc((size_t)n + 1, sizeof *w);
    for (i = 0; i < n; i++) {
        const ds_st_tensor *t = ds_safetensors_tensor_at(st, i);
        touch(t->name, strlen(t->name) + 1);
        touch(t->dtype, strlen(t->dtype) + 1);
        touch(t->data, t->nbytes);
        if (ds_safetensors_find(st, t->name) != t) abort();
        if (t->type != DS_TYPE_COUNT_ && t->nbytes <= 4096) {   /* small float tensors go back out */
            w[nw].name = t->name;
            w[nw].type = t->type;
            w[nw].n_dims = t->n_dims;
            for (k = 0; k < t->n_dims; k++) w[nw].shape[k] = t->shape[k];
            w[nw++].data = t->data;
        }
    }
    sink += ds_safetensors_meta(st, "format") != NULL;
    if (nw && nw <= 8) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/fuzz_safetensors_%d.out", (int)getpid());
        if (ds_safetensors_write(path, w, nw, NULL, 0) == DS_OK) {
            ds_safetensors *back = NULL;
            if (ds_safetensors_open(path, &back) != DS_OK || ds_safetensors_n_tensors(back) != nw) abort();
            ds_safetensors_free(back);
        }
        remove(path);
    }
    free(w);
    ds_safetensors_free(st);
    return 0;
}
