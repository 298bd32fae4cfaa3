/* train_tiny.c - train a tiny byte-level transformer from scratch on a text file for about a
   minute, then sample from it.
       cc -O2 -I. examples/train_tiny.c -o train_tiny -lm -lpthread
       ./train_tiny tinyshakespeare.txt [seconds] */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    ds_model_config mc = {0};
    ds_train_config tc = {0};
    ds_trainer *tr;
    ds_train_step_info info;
    FILE *f;
    unsigned char *text;
    long n;
    double budget = argc > 2 ? atof(argv[2]) : 60.0, t0;
    int32_t tok[16 * 64], tgt[16 * 64], ctx[64];
    float probs[256];
    uint64_t rng = 42;
    int i, k, len;

    if (argc < 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: train_tiny TEXT_FILE [seconds]\n");
        return 1;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = (unsigned char *)malloc((size_t)n);
    if (!text || n < 1000 || fread(text, 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);

    /* a 4-layer, 128-wide Llama over bytes: 0 fields take the defaults */
    mc.n_vocab = 256; mc.n_embd = 128; mc.n_layer = 4; mc.n_head = 4; mc.n_ff = 352; mc.tied_output = 1;
    tc.batch = 16; tc.seq_len = 64; tc.lr = 3e-3f; tc.warmup = 20; tc.steps = 400; tc.n_threads = 1;
    if (ds_trainer_create(&mc, &tc, &tr) != DS_OK) {
        fprintf(stderr, "train_tiny: %s\n", ds_last_error());
        return 1;
    }
    t0 = ds_time();
    while (ds_time() - t0 < budget && ds_trainer_step_count(tr) < tc.steps) {
        for (i = 0; i < tc.batch; i++) { /* random windows of the text; targets are shifted by one */
            long start = (long)((rng = rng * 6364136223846793005ULL + 1442695040888963407ULL) >> 33) % (n - tc.seq_len - 1);
            for (k = 0; k < tc.seq_len; k++) {
                tok[i * tc.seq_len + k] = text[start + k];
                tgt[i * tc.seq_len + k] = text[start + k + 1];
            }
        }
        ds_trainer_step_tokens(tr, tok, tgt, &info);
        if (info.step % 20 == 0) printf("step %4d  loss %.3f  (%.0f s)\n", info.step, info.loss, ds_time() - t0);
    }

    /* sample 400 bytes at temperature 0.8, feeding back the last 64 */
    printf("\n--- sample ---\n");
    ctx[0] = '\n';
    len = 1;
    for (i = 0; i < 400; i++) {
        double r, acc = 0.0, z = 0.0;
        int next = 0;
        ds_trainer_next_probs(tr, ctx, len, probs);
        for (k = 0; k < 256; k++) z += (probs[k] = powf(probs[k], 1.0f / 0.8f));
        r = (double)((rng = rng * 6364136223846793005ULL + 1442695040888963407ULL) >> 11) / 9007199254740992.0 * z;
        for (k = 0; k < 256 && acc <= r; k++) acc += probs[next = k];
        putchar(next);
        if (len == 64) memmove(ctx, ctx + 1, sizeof(int32_t) * 63), len = 63;
        ctx[len++] = next;
    }
    printf("\n");
    ds_trainer_free(tr);
    free(text);
    return 0;
}
