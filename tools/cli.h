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
/* Reads a whole file into a NUL-terminated buffer (free with free()); NULL on failure. */
char *cli_read_file(const char *path, size_t *len);
/* Reports a library failure: "deepseek CMD: what: <ds_last_error()>" */
int cli_fail(const char *cmd, const char *what, ds_status s);
int cli_usage_error(const char *cmd, const char *fmt, ...);

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;
#endif
