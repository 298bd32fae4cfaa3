/* libFuzzer harness for LoRA adapter loading (GGUF; PEFT when the input is not GGUF, with a fixed
   adapter_config.json beside it): the input goes to a temporary file, is loaded without a base,
   and an adapter that loads is saved as GGUF and loaded again, which must give the same pairs.
   clang -fsanitize=fuzzer,address,undefined -I. tests/fuzz_lora.c -lm -lpthread */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char dir[64], in[96], out[96], cfg[96];
    ds_lora_adapter *a = NULL, *b = NULL;
    FILE *f;
    snprintf(dir, sizeof dir, "/tmp/fuzz_lora_%d", (int)getpid());
    mkdir(dir, 0777);
    snprintf(in, sizeof in, "%s/adapter_model.safetensors", dir);
    snprintf(out, sizeof out, "%s/back.gguf", dir);
    snprintf(cfg, sizeof cfg, "%s/adapter_config.json", dir);
    if ((f = fopen(cfg, "wb")) != NULL) {
        fputs("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}", f);
        fclose(f);
    }
    if (!(f = fopen(in, "wb"))) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if (ds_lora_adapter_load(in, NULL, &a) == DS_OK) {
        if (!a) abort();
        if (ds_lora_adapter_save(a, out, DS_LORA_GGUF) == DS_OK) {   /* PEFT without a base: no architecture */
            if (ds_lora_adapter_load(out, NULL, &b) != DS_OK || ds_lora_adapter_n_pairs(b) != ds_lora_adapter_n_pairs(a) ||
                ds_lora_adapter_rank(b) != ds_lora_adapter_rank(a))
                abort();
            ds_lora_adapter_free(b);
        }
        ds_lora_adapter_free(a);
    } else if (a) {
        abort();
    }
    remove(in);
    remove(out);
    remove(cfg);
    rmdir(dir);
    return 0;
}
