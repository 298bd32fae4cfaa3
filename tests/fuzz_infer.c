/* libFuzzer harness for model loading: the input is a GGUF image; when it loads as a model, a
   session evaluates a few tokens and generates a few more, so ASan sees any weight, norm or
   vocabulary access that the shape checks let through.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_infer.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    void *copy = ds_alloc(size ? size : 1);   /* 64-byte aligned, as a mapped file would be */
    ds_model *m = NULL;
    ds_session *s = NULL;
    ds_session_config sp;
    memcpy(copy, data, size);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    if (ds_model_load_memory(copy, size, NULL, &m) == DS_OK && ds_session_create(m, &sp, &s) == DS_OK) {
        int32_t tok[3] = {0, 1, 2};
        ds_generate_config gc;
        int n_vocab = ds_model_get_config(m)->n_vocab;
        float *logits = (float *)malloc(sizeof(float) * (size_t)n_vocab);
        tok[1] %= n_vocab;
        tok[2] %= n_vocab;
        ds_session_eval(s, tok, 3, logits);
        memset(&gc, 0, sizeof gc);
        gc.max_tokens = 3;
        ds_generate(s, "ab", &gc, NULL);
        free(logits);
    }
    ds_session_free(s);
    ds_model_free(m);
    ds_free(copy);
    return 0;
}
