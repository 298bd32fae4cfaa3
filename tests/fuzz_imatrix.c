/* libFuzzer harness for the importance-matrix reader (ds_imatrix_load's checks on an opened
   GGUF): every entry it accepts is read whole, so ASan sees any value taken from outside the
   input or a bad count; accepted files must also write back.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_imatrix.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_gguf *g = NULL;
    ds_imatrix *im = NULL;
    int i;
    if (ds_gguf_open_memory(data, size, &g) != DS_OK) return 0;
    if (ds__imatrix_read(g, "fuzz", &im) == DS_OK) {
        for (i = 0; i < ds_imatrix_n_entries(im); i++) {
            const char *name;
            int64_t cols, j;
            const float *m = ds_imatrix_entry(im, i, &name, &cols);
            if (!m || cols < 1 || ds_imatrix_find(im, name, NULL) != m) abort();
            for (j = 0; j < cols; j++) {
                if (!(m[j] >= 0.0f)) abort();   /* finite, non-negative: what the quantizer may rely on */
                sink += m[j];
            }
        }
        ds_imatrix_free(im);
    }
    ds_gguf_free(g);
    return 0;
}
