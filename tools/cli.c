/* cli.c - shared helpers of the `deepseek` program; also the one translation unit that holds
   the library's implementation for the whole program. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "cli.h"
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

const char *cli_value(int argc, char **argv, int *i, const char *cmd) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "deepseek %s: option %s needs a value (see --help)\n", cmd, argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cli_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v;
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+')) return 0;   /* no blanks, no words */
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_float(const char *s, double lo, double hi, double *out) {
    char *end;
    double v;
    const char *p = s + (*s == '-' || *s == '+');
    if (!((*p >= '0' && *p <= '9') || *p == '.') || strchr(s, 'x') || strchr(s, 'X')) return 0;   /* decimal only */
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

int cli_int_opt(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    if (cli_int(s, lo, hi, out)) return 1;
    cli_usage_error(cmd, "%s needs an integer in [%ld, %ld], not '%s'", opt, lo, hi, s);
    return 0;
}

int cli_float_opt(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    if (cli_float(s, lo, hi, out)) return 1;
    cli_usage_error(cmd, "%s needs a number in [%g, %g], not '%s'", opt, lo, hi, s);
    return 0;
}

char *cli_read_file(const char *path, size_t *len) {
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    struct stat st;
    if (!f) return NULL;
    if (!is_stdin && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    for (;;) {
        size_t r;
        if (n + 65536 + 1 > cap) {
            char *nb;
            cap = (n + 65536 + 1) * 2;
            nb = (char *)realloc(buf, cap);
            if (!nb) {
                free(buf);
                if (!is_stdin) fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r < 65536) break;
    }
    if (ferror(f)) {
        free(buf);
        if (!is_stdin) fclose(f);
        errno = EIO;
        return NULL;
    }
    if (!is_stdin) fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *cli_read_input(const char *cmd, const char *path, size_t *len) {
    char *text = cli_read_file(path, len);
    if (!text) fprintf(stderr, "deepseek %s: %s: cannot read: %s\n", cmd, strcmp(path, "-") ? path : "standard input", strerror(errno));
    return text;
}

int cli_check_output(const char *cmd, const char *path) {
    struct stat st;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (!*path) return fprintf(stderr, "deepseek %s: the output path is empty\n", cmd), 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return fprintf(stderr, "deepseek %s: %s: is a directory, not a file to write\n", cmd, path), 0;
    if (n >= sizeof dir) return fprintf(stderr, "deepseek %s: %s: the path is too long\n", cmd, path), 0;
    memcpy(dir, slash ? path : ".", slash ? (n ? n : 1) : 1);
    dir[slash ? (n ? n : 1) : 1] = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return fprintf(stderr, "deepseek %s: %s: the folder %s does not exist\n", cmd, path, dir), 0;
    return 1;
}

int cli_fail(const char *cmd, const char *what, ds_status s) {
    const char *e = ds_last_error();
    size_t n = strlen(cmd);
    if (!strncmp(e, cmd, n) && e[n] == ':' && e[n + 1] == ' ') e += n + 2;   /* the library names the command too */
    if (what && *what && !strstr(e, what)) fprintf(stderr, "deepseek %s: %s: %s (%s)\n", cmd, what, e, ds_status_str(s));
    else fprintf(stderr, "deepseek %s: %s (%s)\n", cmd, e, ds_status_str(s));
    return 1;
}

int cli_lora_parse(cli_lora *l, int argc, char **argv, int *i, const char *cmd) {
    char *v, *colon;
    double d = 1.0;
    if (strcmp(argv[*i], "--lora")) return 0;
    if (!(v = (char *)cli_value(argc, argv, i, cmd))) return -1;
    if (l->n == CLI_MAX_LORA) return cli_usage_error(cmd, "at most %d --lora adapters", CLI_MAX_LORA), -1;
    colon = strrchr(v, ':');
    if (colon && cli_float(colon + 1 + (colon[1] == '-'), 0, 1e6, &d)) {   /* FILE:S; a bare FILE may hold ':' */
        if (colon[1] == '-') d = -d;
        *colon = 0;
    } else {
        d = 1.0;
    }
    if (!*v) return cli_usage_error(cmd, "--lora needs a file"), -1;
    l->path[l->n] = v;
    l->scale[l->n++] = (float)d;
    return 1;
}

int cli_lora_attach(cli_lora *l, const char *cmd, const ds_model *m, ds_session *s) {
    ds_status e;
    int k;
    for (k = 0; k < l->n; k++)
        if (!l->a[k] && (e = ds_lora_adapter_load(l->path[k], m, &l->a[k])) != DS_OK) return cli_fail(cmd, l->path[k], e);
    if (l->n && (e = ds_session_set_lora(s, l->a, l->scale, l->n)) != DS_OK) return cli_fail(cmd, "--lora", e);
    return 0;
}

void cli_lora_free(cli_lora *l) {
    int k;
    for (k = 0; k < l->n; k++) {
        ds_lora_adapter_free(l->a[k]);
        l->a[k] = NULL;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "deepseek %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'deepseek %s --help')\n", cmd);
    return 2;
}

ds_status cli_file_info_get(const char *path, cli_file_info *out) {
    double per_type[DS_TYPE_COUNT_] = {0}, most = -1;
    ds_gguf *g;
    int64_t i;
    int k;
    ds_status s = ds_gguf_open(path, &g);
    memset(out, 0, sizeof *out);
    if (s) return s;
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        double n = (double)t->ne[0] * (double)t->ne[1] * (double)t->ne[2] * (double)t->ne[3];
        out->weights += n;
        out->bytes += (double)t->nbytes;
        if (t->n_dims >= 2 && (int)t->type >= 0 && (int)t->type < DS_TYPE_COUNT_) per_type[t->type] += n;
    }
    for (k = 0; k < DS_TYPE_COUNT_; k++)
        if (per_type[k] > most) most = per_type[k], out->main_type = (ds_type)k;
    out->file = ds_gguf_file_size(g);
    ds_gguf_free(g);
    return DS_OK;
}
