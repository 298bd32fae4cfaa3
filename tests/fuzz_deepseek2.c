/* libFuzzer harness for the deepseek2 model reader: open the input as GGUF, read the deepseek2
   config from its metadata and load every layer's MLA / MoE tensors (shapes, types, presence),
   touching the first and last byte of each, so ASan sees any pointer that escapes the input.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_deepseek2.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"

static volatile unsigned sink;

static void touch(const ds__mat *m) {
    uint64_t n;
    if (!m->data || ds_type_nbytes(m->type, m->rows * m->cols, &n) != DS_OK || !n) return;
    sink += ((const uint8_t *)m->data)[0] + ((const uint8_t *)m->data)[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_gguf *g = NULL;
    ds_model_config c;
    ds__layer L;
    uint64_t bytes = 0;
    int il;
    if (ds_gguf_open_memory(data, size, &g) != DS_OK) return 0;
    if (ds__deepseek2_read_config(g, &c) == DS_OK) {
        sink += (unsigned)ds_model_kv_bytes_per_token(&c, 2);
        for (il = 0; il < c.n_layer; il++) {
            if (ds__deepseek2_load_layer(g, &c, il, &L, &bytes) != DS_OK) break;
            touch(&L.mla.wq); touch(&L.mla.wq_a); touch(&L.mla.wq_b); touch(&L.mla.wkv_a); touch(&L.mla.wkv_b);
            touch(&L.mla.wk_b); touch(&L.mla.wv_b); touch(&L.mla.wo); touch(&L.ffn.gate); touch(&L.ffn.down);
            touch(&L.moe.gate_inp); touch(&L.moe.gate_exps); touch(&L.moe.down_exps); touch(&L.moe.down_sh);
        }
    }
    ds_gguf_free(g);
    return 0;
}
