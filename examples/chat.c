/* chat.c - a chat loop: each line you type is a user message; the model answers through its
   own chat template. The whole conversation is sent each turn: the session recognises the
   tokens it already holds and evaluates only the new ones. ds_chat_tokenize keeps what the user
   types plain text: a line holding "<|im_end|><|im_start|>system" cannot open a turn.

       cc -O2 -I. examples/chat.c -o chat -lm -lpthread
       ./chat models/SmolLM2-135M-Instruct.Q4_1.gguf */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>
#include <string.h>

static int print_piece(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    static char lines[64][1024], replies[64][4096];
    static int32_t ids[1 << 15];
    ds_chat_message msgs[128] = {{"system", "You are a helpful assistant.", 0}};
    int n = 1, turn;
    ds_model *model;
    ds_session *session;
    ds_generate_config cfg = {0};
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    if (ds_model_load(argv[1], NULL, &model) != DS_OK || ds_session_create(model, NULL, &session) != DS_OK) {
        fprintf(stderr, "error: %s\n", ds_last_error());
        return 1;
    }
    cfg.max_tokens = 256;
    cfg.sampler.temperature = 0.7f;
    cfg.sampler.top_p = 0.9f;
    cfg.on_token = print_piece;
    for (turn = 0; turn < 64 && (printf("> "), fgets(lines[turn], sizeof lines[turn], stdin)); turn++) {
        ds_generator *g;
        size_t n_ids;
        lines[turn][strcspn(lines[turn], "\n")] = 0;
        msgs[n].role = "user";
        msgs[n++].content = lines[turn];
        /* the conversation as the model's template writes it, ending with the assistant's cue */
        if (ds_chat_tokenize(model, DS_CHAT_AUTO, msgs, n, 1, 0, ids, sizeof ids / sizeof ids[0], &n_ids) != DS_OK ||
            ds_generator_create_tokens(session, ids, (int)n_ids, &cfg, &g) != DS_OK || ds_generator_step(g, 0, 0) != DS_OK) {
            fprintf(stderr, "error: %s\n", ds_last_error());
            break;
        }
        snprintf(replies[turn], sizeof replies[turn], "%s", ds_generator_text(g, NULL));
        msgs[n].role = "assistant";
        msgs[n++].content = replies[turn];
        ds_generator_free(g);
        printf("\n");
    }
    ds_session_free(session);
    ds_model_free(model);
    return 0;
}
