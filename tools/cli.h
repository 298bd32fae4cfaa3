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

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;
#endif
