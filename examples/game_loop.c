/* game_loop.c - an NPC line written a few tokens per frame, inside a per-frame time budget.

   A game cannot stall a frame for the hundreds of milliseconds a whole line takes. A
   ds_generator does the work in slices: each frame hands it a budget (here 8 ms of a 60 fps
   frame) and it evaluates the prompt in chunks, then decodes tokens, for as long as the budget
   allows. A slice overruns by at most about one token's decode time.

       cc -O2 -I. examples/game_loop.c -o game_loop -lm -lpthread
       ./game_loop models/SmolLM2-135M-Instruct.Q4_1.gguf [budget_ms] */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *prompt = "<|im_start|>system\nYou are Brom, a gruff blacksmith in a fantasy village.<|im_end|>\n"
                         "<|im_start|>user\nGreet the traveller who just walked into your forge.<|im_end|>\n<|im_start|>assistant\n";
    double budget = (argc > 2 ? atof(argv[2]) : 8.0) / 1000.0, worst = 0, slowest_token = 0;
    ds_session_config sp = {0};
    ds_generate_config cfg = {0};
    ds_model *model;
    ds_session *session;
    ds_generator *npc;
    int frame = 0, shown = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [budget_ms]\n", argv[0]);
        return 2;
    }
    sp.n_ctx = 512;
    sp.n_threads = 1;   /* the other cores stay the game's */
    if (ds_model_load(argv[1], NULL, &model) != DS_OK || ds_session_create(model, &sp, &session) != DS_OK) {
        fprintf(stderr, "error: %s\n", ds_last_error());
        return 1;
    }
    cfg.max_tokens = 60;
    cfg.sampler.temperature = 0.8f;
    cfg.sampler.top_p = 0.9f;
    if (ds_generator_create(session, prompt, &cfg, &npc) != DS_OK) return 1;
    while (ds_generator_state(npc) == DS_GEN_RUNNING) {
        /* ... the game updates and draws here ... */
        int before = ds_generator_result(npc)->n_generated;
        double t0 = ds_time(), spent;
        size_t len;
        const char *text;
        if (ds_generator_step(npc, 0, budget) != DS_OK) break;
        spent = ds_time() - t0;
        text = ds_generator_text(npc, &len);
        if (spent > worst) worst = spent;
        if (ds_generator_result(npc)->n_generated - before == 1 && spent > slowest_token) slowest_token = spent;
        printf("frame %3d: %5.2f ms of %.2f, %d tokens | %.*s\n", frame++, spent * 1e3, budget * 1e3,
               ds_generator_result(npc)->n_generated - before, (int)(len - shown), text + shown);
        shown = (int)len;
    }
    printf("worst frame %.2f ms for a budget of %.2f ms (over by %.2f ms; one token's decode takes up to %.2f ms)\n", worst * 1e3,
           budget * 1e3, worst > budget ? (worst - budget) * 1e3 : 0.0, slowest_token * 1e3);
    ds_generator_free(npc);
    ds_session_free(session);
    ds_model_free(model);
    return 0;
}
