/* generate.c - complete a prompt with a GGUF model, streaming the text as it comes.

       cc -O2 -I. examples/generate.c -o generate -lm -lpthread
       ./generate models/SmolLM2-135M-Instruct.Q4_1.gguf "Once upon a time" */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>

/* called with each new piece of text; returning nonzero would stop the generation */
static int print_piece(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    ds_model *model;
    ds_session *session;
    ds_generate_config cfg = {0};   /* zero = defaults (greedy, no limit) */
    ds_generate_result result;
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]);
        return 2;
    }
    if (ds_model_load(argv[1], NULL, &model) != DS_OK || ds_session_create(model, NULL, &session) != DS_OK) {
        fprintf(stderr, "error: %s\n", ds_last_error());
        return 1;
    }
    cfg.max_tokens = 100;
    cfg.sampler.temperature = 0.7f;
    cfg.sampler.top_p = 0.9f;
    cfg.sampler.seed = 42;
    cfg.on_token = print_piece;
    if (ds_generate(session, argv[2], &cfg, &result) != DS_OK) fprintf(stderr, "error: %s\n", ds_last_error());
    fprintf(stderr, "\n[%d tokens at %.1f tokens/s]\n", result.n_generated, result.n_generated / result.gen_seconds);
    ds_session_free(session);
    ds_model_free(model);
    return 0;
}
