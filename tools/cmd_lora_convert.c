/* deepseek lora-convert - a LoRA adapter between llama.cpp's GGUF and Hugging Face PEFT. */
#include "cli.h"

static const char *convert_usage =
    "usage: deepseek lora-convert IN OUT [-m BASE.gguf]\n"
    "\n"
    "Reads the adapter IN (llama.cpp LoRA GGUF, or a PEFT folder / adapter_model.safetensors with\n"
    "adapter_config.json beside it) and writes OUT: a GGUF file when OUT ends in .gguf, otherwise a\n"
    "PEFT folder (adapter_model.safetensors + adapter_config.json). For a llama the q_proj and\n"
    "k_proj rows are ordered differently in the two formats, so that conversion needs the base\n"
    "model (-m), which also checks that the adapter fits it.\n"
    "\n"
    "  -m FILE          the base model the adapter belongs to\n"
    "  -h, --help       this help\n";

int ds_cmd_lora_convert(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *base = NULL;
    ds_model *m = NULL;
    ds_lora_adapter *a = NULL;
    ds_status s;
    size_t n;
    int i, n_pos = 0, gguf;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(convert_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m")) {
            if (!(base = cli_value(argc, argv, &i, "lora-convert"))) return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("lora-convert", "unknown option '%s'", argv[i]);
        } else if (n_pos < 2) {
            pos[n_pos++] = argv[i];
        } else {
            return cli_usage_error("lora-convert", "unexpected argument '%s'", argv[i]);
        }
    }
    if (n_pos != 2) return cli_usage_error("lora-convert", "needs IN and OUT");
    n = strlen(pos[1]);
    gguf = n >= 5 && !strcmp(pos[1] + n - 5, ".gguf");
    if (gguf && !cli_check_output("lora-convert", pos[1])) return 1;
    if (base && (s = ds_model_load(base, NULL, &m)) != DS_OK) return cli_fail("lora-convert", base, s);
    s = ds_lora_adapter_load(pos[0], m, &a);
    if (s == DS_OK) s = ds_lora_adapter_save(a, pos[1], gguf ? DS_LORA_GGUF : DS_LORA_PEFT);
    if (s == DS_OK) fprintf(stderr, "lora-convert: %s -> %s (%s, %d matrices, r %d, alpha %g)\n", pos[0], pos[1], gguf ? "GGUF" : "PEFT",
                            ds_lora_adapter_n_pairs(a), ds_lora_adapter_rank(a), (double)ds_lora_adapter_alpha(a));
    ds_lora_adapter_free(a);
    ds_model_free(m);
    return s == DS_OK ? 0 : cli_fail("lora-convert", NULL, s);
}
