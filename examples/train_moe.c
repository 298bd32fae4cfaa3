/* train_moe.c - train a small DeepSeek-style model (MLA attention, MoE feed-forward with
   auxiliary-loss-free bias balancing) and a dense model of the same active size on a text
   file, byte by byte; print both validation losses and each expert's share of the routed
   tokens. The two configs differ only in their per-layer kind lines.

       cc -O2 -I. examples/train_moe.c -o train_moe -lm -lpthread
       ./train_moe tinyshakespeare.txt [steps] [threads]                                     */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>
#include <stdlib.h>

/* the same shape for both: 64 wide, 3 layers, 4 heads; the MoE layers use 2 of 8 experts of
   width 64 plus one shared expert, so they compute like a dense FFN of width 192 */
static const char *common =
    "n_vocab = 256\n n_embd = 64\n n_layer = 3\n n_head = 4\n n_ctx = 64\n n_ff = 192\n"
    "batch = 8\n seq_len = 64\n lr = 3e-3\n warmup = 20\n seed = 1\n";
static const char *deepseek =
    "layers.attn = mla\n"            /* one line: every layer's attention becomes MLA */
    "layer.1.ffn = moe\n layer.2.ffn = moe\n"
    "kv_lora_rank = 32\n qk_nope_dim = 16\n qk_rope_dim = 8\n v_head_dim = 16\n q_lora_rank = 32\n"
    "n_expert = 8\n n_expert_used = 2\n n_expert_shared = 1\n n_ff_expert = 64\n"
    "gating = sigmoid\n norm_topk = 1\n moe_bias_rate = 1e-2\n";

static unsigned char *text;
static long n_text;

static void window(uint64_t *rng, long lo, long hi, int T, int32_t *tok, int32_t *tgt) {
    long s;
    int t;
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    s = lo + (long)((*rng >> 33) % (uint64_t)(hi - lo - T - 1));
    for (t = 0; t < T; t++) {
        tok[t] = text[s + t];
        tgt[t] = text[s + t + 1];
    }
}

/* trains from config text; returns the validation loss and prints the expert shares */
static float run(const char *name, const char *extra, int steps, int threads) {
    static char cfg[4096];
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    int32_t tok[8 * 64], tgt[8 * 64];
    uint64_t rng = 7;
    long split = n_text * 9 / 10;
    double val = 0, t0 = ds_time();
    int i, b, l;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    snprintf(cfg, sizeof cfg, "%s%s", common, extra);
    if (ds_model_config_parse(cfg, &mc, &tc, name) != DS_OK) {
        fprintf(stderr, "%s: %s\n", name, ds_last_error());
        return -1;
    }
    tc.steps = steps;
    tc.n_threads = threads;
    if (ds_trainer_create(&mc, &tc, &tr) != DS_OK) {
        fprintf(stderr, "%s: %s\n", name, ds_last_error());
        return -1;
    }
    for (i = 0; i < steps; i++) {
        ds_train_step_info info;
        for (b = 0; b < 8; b++) window(&rng, 0, split, 64, tok + b * 64, tgt + b * 64);
        ds_trainer_step_tokens(tr, tok, tgt, &info);
        if (i % 50 == 0 || i == steps - 1) fprintf(stderr, "%s step %d loss %.3f\n", name, i, info.loss);
    }
    for (l = 0; l < mc.n_layer; l++) ds_trainer_expert_share(tr, l, NULL);   /* count validation only */
    for (i = 0; i < 32; i++) {
        float loss;
        for (b = 0; b < 8; b++) window(&rng, split, n_text, 64, tok + b * 64, tgt + b * 64);
        ds_trainer_loss(tr, tok, tgt, 8, 64, &loss);
        val += loss / 32;
    }
    printf("%s: %d steps in %.0f s, validation loss %.4f\n", name, steps, ds_time() - t0, val);
    for (l = 0; l < mc.n_layer; l++) {
        double share[64], lo = 1, hi = 0;
        int e, E = ds_trainer_expert_share(tr, l, share);
        if (!E) continue;
        printf("  layer %d expert shares:", l);
        for (e = 0; e < E; e++) {
            printf(" %.3f", share[e]);
            lo = share[e] < lo ? share[e] : lo;
            hi = share[e] > hi ? share[e] : hi;
        }
        printf("  (max/mean %.2f, mean/min %.2f)\n", hi * E, 1.0 / (lo * E));
    }
    ds_trainer_free(tr);
    return (float)val;
}

int main(int argc, char **argv) {
    FILE *f;
    int steps = argc > 2 ? atoi(argv[2]) : 300, threads = argc > 3 ? atoi(argv[3]) : 0;
    if (argc < 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: train_moe TEXT [steps] [threads]\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    n_text = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = (unsigned char *)malloc((size_t)n_text);
    if (!text || fread(text, 1, (size_t)n_text, f) != (size_t)n_text || n_text < 10000) return 1;
    fclose(f);
    run("mla+moe", deepseek, steps, threads);
    run("dense", "", steps, threads);
    free(text);
    return 0;
}
