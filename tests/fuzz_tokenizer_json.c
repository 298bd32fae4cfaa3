/* libFuzzer harness for the tokenizer.json loader: load the input; when it loads, encode and
   decode a fixed text, write it back as tokenizer.json and load that again.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_tokenizer_json.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "Hello world, it's 12345 \xE4\xB8\xAD\xE6\x96\x87 <|im_end|>\n\n \xF0\x9F\x98\x80";
    ds_tokenizer *t = NULL, *back = NULL;
    int32_t ids[512];
    char out[4096], *json;
    size_t n, m, len;
    ds_status s = ds_tokenizer_from_json((const char *)data, size, &t);
    if (s != DS_OK) {
        if (t || !ds_last_error()[0]) abort();   /* a failure always says why */
        return 0;
    }
    s = ds_tokenize(t, text, sizeof text - 1, DS_TOKENIZE_PARSE_SPECIAL | DS_TOKENIZE_ADD_BOS, ids, 512, &n);
    if (s != DS_OK && s != DS_ERR_BOUNDS) abort();
    if (s == DS_OK) {
        s = ds_detokenize(t, ids, n, out, sizeof out, &m);
        if (s != DS_OK && s != DS_ERR_BOUNDS) abort();
    }
    if (ds_tokenizer_to_json(t, &json, &len) == DS_OK) {
        if (ds_tokenizer_from_json(json, len, &back) != DS_OK) abort();
        ds_tokenizer_free(back);
        ds_free(json);
    }
    ds_tokenizer_free(t);
    return 0;
}
