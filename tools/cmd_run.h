/* cmd_run.h - the model and sampling options `deepseek run` and `deepseek chat` share. */
#ifndef DS_CMD_RUN_H
#define DS_CMD_RUN_H
#include "cli.h"

typedef struct gen_opts {
    const char *model;
    int n_predict;              /* -1: until the end of generation or a full context */
    int n_threads, n_ctx;
    ds_sampler_config sampler;
} gen_opts;

#define GEN_OPTS_HELP                                                                          \
    "  -m FILE             the model (GGUF: llama or qwen2 architecture)\n"                      \
    "  -n N                tokens to generate at most (default 128; -1: until the model stops)\n" \
    "  --temp T            temperature (default 0.8; 0: greedy)\n"                               \
    "  --top-k K           keep the K most likely tokens (default 40; 0: off)\n"                 \
    "  --top-p P           keep the most likely tokens up to mass P (default 0.95; 1: off)\n"    \
    "  --min-p P           drop tokens below P times the most likely (default 0.05; 0: off)\n"   \
    "  --repeat-penalty R  penalise the last 64 tokens (default 1: off)\n"                       \
    "  --seed S            random seed (default: from the clock)\n"                              \
    "  -t N                threads (default: all CPUs)\n"                                        \
    "  -c N                context length (default: the model's, at most 4096)\n"

void gen_opts_init(gen_opts *o);
/* 1: argv[*i] was one of these options (consumed), 0: it is not, -1: a bad value (reported) */
int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i, const char *cmd);
/* loads the model and makes a session; prints the reason and returns nonzero on failure */
int gen_opts_open(const gen_opts *o, const char *cmd, ds_model **m, ds_session **s);
#endif
