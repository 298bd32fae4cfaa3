/* finetune_lora.c - the LoRA quick start: fine-tune a (quantized) model on JSONL examples and
   save the adapter that llama.cpp and 'deepseek' load.
       cc -O2 -I. examples/finetune_lora.c -o finetune_lora -lm -lpthread
       ./finetune_lora models/SmolLM2-135M-Instruct.Q4_1.gguf train.jsonl adapter.gguf */
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <stdio.h>
#include <string.h>

static int progress(void *user, const ds_train_step_info *info, int epoch) {
    (void)user;
    fprintf(stderr, "\repoch %d  step %d  loss %.4f   ", epoch + 1, info->step, info->loss);
    return 0;   /* non-zero stops */
}

int main(int argc, char **argv) {
    ds_model *model = NULL;
    ds_sft_data *data = NULL;
    ds_trainer *tr = NULL;
    ds_lora_config lc = {16, 32.0f, 0.1f, 0, 0};   /* r, alpha, dropout (targets 0: all) */
    ds_finetune_config fc;
    ds_status st;
    if (argc < 4) {
        fprintf(stderr, "usage: finetune_lora BASE.gguf TRAIN.jsonl ADAPTER.gguf\n");
        return 2;
    }
    memset(&fc, 0, sizeof fc);
    fc.epochs = 3;
    fc.train.n_threads = 2;
    fc.on_step = progress;
    if ((st = ds_model_load(argv[1], NULL, &model)) == DS_OK && (st = ds_sft_data_load(model, argv[2], &data)) == DS_OK &&
        /* the three lines: */
        (st = ds_finetune(model, &lc, data, &fc, &tr)) == DS_OK && (st = ds_trainer_save_lora(tr, argv[3])) == DS_OK)
        fprintf(stderr, "\nadapter -> %s\n", argv[3]);
    else
        fprintf(stderr, "\nerror: %s\n", ds_last_error());
    ds_trainer_free(tr);
    ds_sft_data_free(data);
    ds_model_free(model);
    return st == DS_OK ? 0 : 1;
}
