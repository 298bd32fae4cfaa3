/* libFuzzer harness for the training parsers: the config text (ds_model_config_parse, then the
   shape check) and the token shard header (then every token it claims to hold is read).
   The first input byte picks the parser.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_train.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdlib.h>

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        char *text = (char *)malloc(size);
        ds_model_config mc;
        ds_train_config tc;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = 0;
        memset(&mc, 0, sizeof mc);
        memset(&tc, 0, sizeof tc);
        if (ds_model_config_parse(text, &mc, &tc, "fuzz") == DS_OK) sink += (unsigned)ds_model_config_check(&mc);
        free(text);
    } else {
        ds__shard s;
        uint8_t *copy = (uint8_t *)malloc(size - 1 ? size - 1 : 1);
        memcpy(copy, data + 1, size - 1);
        memset(&s, 0, sizeof s);
        if (ds__shard_parse(&s, copy, size - 1, "fuzz") == DS_OK) {
            uint64_t i;
            for (i = 0; i < s.n; i++) sink += ds__shard_token(&s, i);
        }
        free(copy);
    }
    return 0;
}
