/* deepseek.c - the `deepseek` command-line program: dispatches to tools/cmd_*.c. */
#include "cli.h"

int ds_cmd_info(int argc, char **argv);
int ds_cmd_bench(int argc, char **argv);
int ds_cmd_perplexity(int argc, char **argv);
int ds_cmd_data(int argc, char **argv);
int ds_cmd_train(int argc, char **argv);
int ds_cmd_finetune(int argc, char **argv);

static int ds_cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("deepseek.h %d.%d.%d\n", DS_VERSION_MAJOR, DS_VERSION_MINOR, DS_VERSION_PATCH);
    return 0;
}

int ds_cmd_tokenize(int argc, char **argv);
int ds_cmd_run(int argc, char **argv);
int ds_cmd_chat(int argc, char **argv);
int ds_cmd_train_tokenizer(int argc, char **argv);
int ds_cmd_quantize(int argc, char **argv);
int ds_cmd_quant_eval(int argc, char **argv);
int ds_cmd_imatrix(int argc, char **argv);
int ds_cmd_export_lora(int argc, char **argv);
int ds_cmd_lora_convert(int argc, char **argv);

static const cli_command commands[] = {
    {"info", ds_cmd_info, "what a GGUF file holds: architecture, hyper-parameters, tensors"},
    {"version", ds_cmd_version, "print the library version"},
    {"run", ds_cmd_run, "complete a prompt with a model, streaming the text"},
    {"chat", ds_cmd_chat, "talk with a model through its chat template"},
    {"tokenize", ds_cmd_tokenize, "text to token ids and back (GGUF or tokenizer.json)"},
    {"train-tokenizer", ds_cmd_train_tokenizer, "train a byte-level BPE vocabulary from text files"},
    {"bench", ds_cmd_bench, "prompt and generation speed (pp512 / tg128), GB/s, GFLOP/s; --attn: dense vs SDA attention"},
    {"quantize", ds_cmd_quantize, "convert a model's weights to another type (llama.cpp's quantizer)"},
    {"imatrix", ds_cmd_imatrix, "importance matrix (mean squared activations) for weighted quantizing"},
    {"quant-eval", ds_cmd_quant_eval, "what quantizing cost: size, perplexity, KL divergence, top-1, speed"},
    {"export-lora", ds_cmd_export_lora, "merge LoRA adapters into a model file (re-quantized)"},
    {"lora-convert", ds_cmd_lora_convert, "a LoRA adapter between llama.cpp GGUF and Hugging Face PEFT"},
    {"perplexity", ds_cmd_perplexity, "perplexity of a text (llama.cpp's method)"},
    {"data", ds_cmd_data, "turn text files into token shards for training"},
    {"train", ds_cmd_train, "train a model from scratch (or benchmark training)"},
    {"finetune", ds_cmd_finetune, "LoRA / QLoRA fine-tuning on JSONL examples, writing a llama.cpp adapter"},
};

static void usage(FILE *f) {
    size_t i;
    fprintf(f, "usage: deepseek COMMAND [options]   ('deepseek COMMAND --help' for each; --version)\n\ncommands:\n");
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    size_t i;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) return ds_cmd_version(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "deepseek: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
