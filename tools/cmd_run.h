/* cmd_run.h - the model and sampling options `deepseek run` and `deepseek chat` share. */
#ifndef DS_CMD_RUN_H
#define DS_CMD_RUN_H
#include "cli.h"

typedef struct gen_opts {
    const char *model;
    int n_predict;              /* -1: until the end of generation or a full context */
    int n_threads, n_ctx;
    int special;                /* --special: the text may hold special tokens (trusted input) */
    ds_sampler_config sampler;
    cli_lora lora;              /* --lora adapters */
} gen_opts;

/* the help of these options; N_DEFAULT is the command's default for -n, as a string */
#define GEN_OPTS_HELP(N_DEFAULT)                                                                         \
    "  -m FILE             the model (GGUF: llama, qwen2 or deepseek2 architecture)\n"                     \
    "  -n N                tokens to generate at most, in [-1, 2147483647] (default " N_DEFAULT             \
    "; -1: until the model stops)\n"                                                                      \
    "  --temp T            temperature in [0, 100] (default 0.8; 0: greedy)\n"                              \
    "  --top-k K           keep the K most likely tokens, K >= 0 (default 40; 0: off)\n"                     \
    "  --top-p P           keep the most likely tokens up to mass P in [0, 1] (default 0.95; 1: off)\n"       \
    "  --min-p P           drop tokens below P times the most likely, P in [0, 1] (default 0.05; 0: off)\n"   \
    "  --repeat-penalty R  penalise the last 64 tokens, R in [0, 100] (default 1: off)\n"                      \
    "  --seed S            random seed, S >= 0 (default: from the clock)\n"                                   \
    "  -t N                threads in [1, 512] (default: all CPUs)\n"                                         \
    "  -c N                context length in [1, the model's] (default: the model's, at most 4096)\n"         \
    "  --special           the text may hold special tokens (<|im_start|> ...); only for trusted input\n" \
    CLI_LORA_HELP

void gen_opts_init(gen_opts *o);
/* 1: argv[*i] was one of these options (consumed), 0: it is not, -1: a bad value (reported) */
int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i, const char *cmd);
/* loads the model and makes a session with the --lora adapters attached; prints the reason and
   returns nonzero on failure (nothing is left to free then) */
int gen_opts_open(gen_opts *o, const char *cmd, ds_model **m, ds_session **s);
/* frees what gen_opts_open made */
void gen_opts_close(gen_opts *o, ds_model *m, ds_session *s);
/* A streaming callback that writes the text to stdout; returns nonzero (cancel) once
   *(volatile int *)user is set, when user is not NULL. */
int gen_print(void *user, int32_t token, const char *text, size_t len);
#endif
