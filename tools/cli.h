/* cli.h - what the `deepseek` subcommands share: argument helpers and the command table.
   Each subcommand lives in tools/cmd_NAME.c and exports `int ds_cmd_NAME(int argc, char **argv)`
   (argv[0] is the subcommand's name). Diagnostics go to stderr; a failure prints one line
   "deepseek NAME: reason" and returns non-zero. */
#ifndef DS_CLI_H
#define DS_CLI_H
#include "../deepseek.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns argv[*i + 1] and advances *i, or prints an error and returns NULL. */
const char *cli_value(int argc, char **argv, int *i, const char *cmd);
/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_int(const char *s, long lo, long hi, long *out);
int cli_float(const char *s, double lo, double hi, double *out);
/* The same for the value of option opt, reporting "OPT needs an integer in [lo, hi], not 'v'"
   on failure (1: parsed, 0: reported). */
int cli_int_opt(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_float_opt(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
/* Reads a whole file ("-": stdin) into a NUL-terminated buffer (free with free()); NULL on
   failure, with the reason in errno (EISDIR for a directory). */
char *cli_read_file(const char *path, size_t *len);
/* cli_read_file, reporting "deepseek CMD: PATH: cannot read: reason" on failure */
char *cli_read_input(const char *cmd, const char *path, size_t *len);
/* Before long work: can path be written (its folder exists, it is no folder)? Reports why not. */
int cli_check_output(const char *cmd, const char *path);
/* Reports a library failure: "deepseek CMD: what: <ds_last_error()>", what left out when the
   library's message already names it */
int cli_fail(const char *cmd, const char *what, ds_status s);
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* A text file's tokens as perplexity reads them (one trailing newline dropped, BOS in front
   when the vocabulary adds one); NULL on failure, reported. free() them. */
int32_t *cli_text_tokens(const char *cmd, const ds_tokenizer *tk, const char *path, size_t *n_tok);

/* Scoring a text with llama.cpp's perplexity method (cmd_perplexity.c): per model, sums over
   the scored tokens. */
typedef struct cli_score {
    double nll;        /* negative log-likelihoods of the next tokens */
    double kld, kld2;  /* KL(base || model) and its square (models after the first) */
    long same_top;     /* positions where the model's most likely token is the base's */
    long scored;
} cli_score;
double cli_score_ppl(const cli_score *r);
/* mean KLD and top-token agreement (a fraction), with their standard errors */
void cli_score_stats(const cli_score *r, double *kld, double *kld_err, double *top, double *top_err);

/* Speed as `deepseek bench` measures it (cmd_bench.c): best tokens/s of reps runs of one
   batch of p tokens and of n single-token decodes (p or n 0: skipped, left 0). */
ds_status cli_bench_speed(ds_model *m, ds_pool *pool, int p, int n, int reps, double *pp_tok_s, double *tg_tok_s);

/* A GGUF file's size, its tensors' bytes and elements (bits per weight = 8 bytes / elements)
   and the type holding most elements of its matrices (tensors of >= 2 dimensions). */
typedef struct cli_file_info {
    uint64_t file;
    double bytes, weights;
    ds_type main_type;
} cli_file_info;
ds_status cli_file_info_get(const char *path, cli_file_info *out);

/* the most threads a -t option accepts */
#define CLI_MAX_THREADS 512

/* --lora FILE[:S] (repeatable): LoRA adapters loaded for the model and attached to its session */
#define CLI_MAX_LORA 16
#define CLI_LORA_HELP                                                                                      \
    "  --lora FILE[:S]     apply a LoRA adapter at scale S (default 1): llama.cpp GGUF, or PEFT (a folder\n" \
    "                      with adapter_model.safetensors + adapter_config.json); repeatable, up to 16\n"
typedef struct cli_lora {
    const char *path[CLI_MAX_LORA];
    float scale[CLI_MAX_LORA];
    ds_lora_adapter *a[CLI_MAX_LORA];
    int n;
} cli_lora;
/* 1: argv[*i] was --lora (consumed), 0: it is not, -1: a bad value (reported) */
int cli_lora_parse(cli_lora *l, int argc, char **argv, int *i, const char *cmd);
/* Loads the adapters for m (the first time) and attaches them to s; reports the reason and
   returns nonzero on failure. Nothing to do without --lora. */
int cli_lora_attach(cli_lora *l, const char *cmd, const ds_model *m, ds_session *s);
void cli_lora_free(cli_lora *l);

/* Runs the n models (same vocabulary; the first is the base the others are compared with) on
   the same chunks of the text at path: ctx tokens each (0: 512 or the model's context), the
   first max_chunks of them (0: all). out gets n scores; lora (NULL: none) is
   attached to the last model. 0, or an exit status (reported). */
int cli_score_text(const char *cmd, ds_model *const *models, int n, const char *path, int ctx, int max_chunks, int threads, cli_lora *lora, cli_score *out);

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;
#endif
