/* deepseek quantize - convert a model's weight matrices to another type, as llama.cpp's
   llama-quantize does (the same bytes for the same input). */
#include "cli.h"

static const char *quantize_usage =
    "usage: deepseek quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [--keep-output] [--pure] [-t N]\n"
    "\n"
    "Converts every weight matrix of IN (any type deepseek loads) to TYPE and writes OUT\n"
    "atomically; norms and other 1-D tensors are copied. Without --pure, llama.cpp's rules give\n"
    "the output matrix (or the tied token embedding) Q6_K, or Q8_0 when its rows are not whole\n"
    "256-blocks, and the mixes (Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S; Q4_K and Q5_K are the _M ones)\n"
    "give attn_v and ffn_down more bits in some layers, as llama-quantize does. A tensor whose\n"
    "rows are not whole blocks of its type gets llama.cpp's fallback type (Q4_K -> Q5_0,\n"
    "Q5_K -> Q5_1, Q6_K -> Q8_0, else F16) and is listed. IQ4_NL gives ffn_down of the first\n"
    "eighth of the layers Q5_K. Without an importance matrix the output is byte for byte\n"
    "llama.cpp's. Ends with the sizes and bits per weight, per type.\n"
    "\n"
    "  TYPE             one of: %s\n"
    "  --imatrix FILE   importance matrix (deepseek imatrix, or llama-imatrix's GGUF): Q4_0 Q4_1\n"
    "                   Q5_0 Q5_1 Q6_K search scales minimising each block's error weighted by\n"
    "                   its columns' mean squared activations, as llama-quantize --imatrix does\n"
    "  --keep-output    output.weight keeps its type\n"
    "  --pure           every matrix in TYPE (llama.cpp's --pure)\n"
    "  -t N             threads in [1, 512] (default: all CPUs)\n"
    "  -h, --help       this help\n";

typedef struct quant_progress {
    int64_t n_fallback;
} quant_progress;

static void on_tensor(void *user, const ds_quantize_event *ev) {
    quant_progress *p = (quant_progress *)user;
    if (ev->fallback) {
        p->n_fallback++;
        fprintf(stderr, "\n  %s: rows not whole blocks, kept as %s", ev->name, ds_type_name(ev->to));
    }
    fprintf(stderr, "\rquantize: [%lld/%lld] %-40s %s -> %s", (long long)(ev->index + 1), (long long)ev->count, ev->name,
            ds_type_name(ev->from), ds_type_name(ev->to));
    if (ev->index + 1 == ev->count) fputc('\n', stderr);
}

/* a line per tensor type of the file at path: tensors, weights, MiB, bits per weight */
static ds_status print_types(const char *path) {
    double tw[DS_TYPE_COUNT_], tb[DS_TYPE_COUNT_];
    int tn[DS_TYPE_COUNT_], k;
    ds_gguf *g;
    int64_t i;
    ds_status s = ds_gguf_open(path, &g);
    if (s) return s;
    memset(tw, 0, sizeof tw);
    memset(tb, 0, sizeof tb);
    memset(tn, 0, sizeof tn);
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if ((unsigned)t->type < DS_TYPE_COUNT_) {
            tw[t->type] += (double)t->ne[0] * (double)t->ne[1] * (double)t->ne[2] * (double)t->ne[3];
            tb[t->type] += (double)t->nbytes;
            tn[t->type]++;
        }
    }
    ds_gguf_free(g);
    for (k = 0; k < DS_TYPE_COUNT_; k++)
        if (tn[k])
            printf("  %-6s %4d tensors %12.0f weights %9.2f MiB %6.2f bits per weight\n", ds_type_name((ds_type)k), tn[k], tw[k],
                   tb[k] / 1048576.0, 8.0 * tb[k] / tw[k]);
    return DS_OK;
}

int ds_cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL}, *const *names = ds_quantize_type_names();
    char list[512] = "";
    ds_quantize_config cfg;
    quant_progress prog;
    cli_file_info f0, f1;
    ds_status s;
    int i, n_pos = 0, k;
    long v;
    for (k = 0; names[k]; k++) {
        if (k) strcat(list, " ");
        strcat(list, names[k]);
    }
    memset(&cfg, 0, sizeof cfg);
    memset(&prog, 0, sizeof prog);
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *val;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf(quantize_usage, list);
            return 0;
        } else if (!strcmp(o, "--keep-output")) {
            cfg.keep_output = 1;
        } else if (!strcmp(o, "--pure")) {
            cfg.pure = 1;
        } else if (!strcmp(o, "--imatrix")) {
            if (!(cfg.imatrix = cli_value(argc, argv, &i, "quantize"))) return 2;
        } else if (!strcmp(o, "-t")) {
            if (!(val = cli_value(argc, argv, &i, "quantize"))) return 2;
            if (!cli_int_opt("quantize", o, val, 1, CLI_MAX_THREADS, &v)) return 2;
            cfg.threads = (int)v;
        } else if (o[0] == '-' && o[1]) {
            return cli_usage_error("quantize", "unknown option '%s'", o);
        } else if (n_pos < 3) {
            pos[n_pos++] = o;
        } else {
            return cli_usage_error("quantize", "unexpected argument '%s'", o);
        }
    }
    if (n_pos != 3) return cli_usage_error("quantize", "needs IN.gguf OUT.gguf TYPE");
    for (k = 0; names[k] && strcmp(names[k], pos[2]); k++) {}
    if (!names[k]) return cli_usage_error("quantize", "unknown type '%s' (types: %s)", pos[2], list);
    if (!cli_check_output("quantize", pos[1])) return 1;
    cfg.type = pos[2];
    cfg.progress = on_tensor;
    cfg.user = &prog;
    if ((s = ds_quantize_model(pos[0], pos[1], &cfg))) return cli_fail("quantize", NULL, s);
    if ((s = cli_file_info_get(pos[0], &f0)) || (s = cli_file_info_get(pos[1], &f1))) return cli_fail("quantize", NULL, s);
    printf("%s: per type\n", pos[1]);
    if ((s = print_types(pos[1]))) return cli_fail("quantize", NULL, s);
    printf("%s: %.2f MiB of tensors, %.2f bits per weight\n", pos[0], f0.bytes / 1048576.0, 8.0 * f0.bytes / f0.weights);
    printf("%s: %.2f MiB of tensors, %.2f bits per weight (%s, file %.2f MiB, %.1f%% of the input)\n", pos[1], f1.bytes / 1048576.0,
           8.0 * f1.bytes / f1.weights, pos[2], (double)f1.file / 1048576.0, 100.0 * (double)f1.file / (double)f0.file);
    if (prog.n_fallback) printf("%lld tensors kept in a fallback type (rows not whole blocks)\n", (long long)prog.n_fallback);
    return 0;
}
