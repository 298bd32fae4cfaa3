/* libFuzzer harness for the fine-tuning JSONL loader: load the input as a dataset with a real
   model's tokenizer and chat template (FUZZ_SFT_MODEL, else SmolLM2 in models/, else the
   shipped model); when it loads, pack it and check every window's tokens and targets.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_sft.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

static ds_model *model(void) {
    static ds_model *m = NULL;
    static const char *const paths[] = {"models/SmolLM2-135M-Instruct.Q4_1.gguf", "examples/shakespeare-tiny.gguf"};
    size_t i;
    if (m) return m;
    if (getenv("FUZZ_SFT_MODEL") && ds_model_load(getenv("FUZZ_SFT_MODEL"), NULL, &m) == DS_OK) return m;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (ds_model_load(paths[i], NULL, &m) == DS_OK) return m;
    abort();   /* run from the repository's root */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_model *m = model();
    ds_sft_data *d = NULL;
    int32_t *tok = NULL, *tgt = NULL;
    int64_t n = 0, i, learnt = 0, counted = 0;
    int V = ds_model_get_config(m)->n_vocab;
    ds_status s = ds_sft_data_load_memory(m, (const char *)data, size, "fuzz.jsonl", &d);
    if (s != DS_OK) {
        if (d || !ds_last_error()[0]) abort();   /* a failure always says why */
        return 0;
    }
    if (ds_sft_data_examples(d) < 1) abort();
    ds_sft_data_tokens(d, &learnt);
    if (ds_sft_data_pack(d, 16, 7, (int)(size % 3) - 1, &tok, &tgt, &n) != DS_OK || n < 1) abort();
    for (i = 0; i < n * 16; i++) {
        if (tok[i] < 0 || tok[i] >= V || tgt[i] < DS_TARGET_IGNORE || tgt[i] >= V) abort();
        counted += tgt[i] >= 0;
    }
    if (counted > learnt) abort();
    ds_free(tok);
    ds_free(tgt);
    ds_sft_data_free(d);
    return 0;
}
