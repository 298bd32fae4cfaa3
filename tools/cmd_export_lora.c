/* deepseek export-lora - merge LoRA adapters into a model file, as llama.cpp's llama-export-lora. */
#include "cli.h"

static const char *export_usage =
    "usage: deepseek export-lora -m BASE.gguf --lora ADAPTER[:S] [--lora ...] -o OUT.gguf [--type T] [-t N]\n"
    "\n"
    "Writes OUT (atomically) with W + sum S * (alpha / r) * B A for every matrix an adapter adapts:\n"
    "the sum is taken in f32 from the dequantized weight, then each tensor is stored in its\n"
    "original type (re-quantized where it was quantized), or with --type as `deepseek quantize`\n"
    "would convert it. A merged F32 base gives the adapted model's logits within f32 rounding; a\n"
    "quantized base adds that type's rounding of the merged weights.\n"
    "\n"
    "  -m FILE          the base model (GGUF)\n"
    CLI_LORA_HELP
    "  -o FILE          the merged model\n"
    "  --type T         store the weights as T: %s (default: each tensor's own type)\n"
    "  -t N             threads in [1, 512] (default: all CPUs)\n"
    "  -h, --help       this help\n";

static void on_tensor(void *user, const ds_quantize_event *ev) {
    (void)user;
    fprintf(stderr, "\rexport-lora: [%lld/%lld] %-40s %s -> %s", (long long)(ev->index + 1), (long long)ev->count, ev->name,
            ds_type_name(ev->from), ds_type_name(ev->to));
    if (ev->index + 1 == ev->count) fputc('\n', stderr);
}

int ds_cmd_export_lora(int argc, char **argv) {
    const char *const *names = ds_quantize_type_names(), *base = NULL, *out = NULL, *val;
    char list[256] = "";
    ds_quantize_config cfg;
    ds_model *m = NULL;
    cli_lora l;
    ds_status s;
    int i, k, r;
    long v;
    for (k = 0; names[k]; k++) {
        if (k) strcat(list, " ");
        strcat(list, names[k]);
    }
    memset(&cfg, 0, sizeof cfg);
    memset(&l, 0, sizeof l);
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf(export_usage, list);
            return 0;
        }
        if ((r = cli_lora_parse(&l, argc, argv, &i, "export-lora")) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (strcmp(o, "-m") && strcmp(o, "-o") && strcmp(o, "--type") && strcmp(o, "-t")) return cli_usage_error("export-lora", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "export-lora"))) return 2;
        if (!strcmp(o, "-m")) {
            base = val;
        } else if (!strcmp(o, "-o")) {
            out = val;
        } else if (!strcmp(o, "--type")) {
            for (k = 0; names[k] && strcmp(names[k], val); k++) {}
            if (!names[k]) return cli_usage_error("export-lora", "unknown type '%s' (types: %s)", val, list);
            cfg.type = val;
        } else {
            if (!cli_int_opt("export-lora", o, val, 1, CLI_MAX_THREADS, &v)) return 2;
            cfg.threads = (int)v;
        }
    }
    if (!base || !out || !l.n) return cli_usage_error("export-lora", "needs -m BASE, at least one --lora ADAPTER and -o OUT");
    if (!cli_check_output("export-lora", out)) return 1;
    /* the base as a model (mapped, cheap) orders a PEFT llama adapter's rows; a file we cannot run
       (another architecture) is merged by tensor names alone */
    if (ds_model_load(base, NULL, &m) != DS_OK) m = NULL;
    for (k = 0; k < l.n; k++)
        if ((s = ds_lora_adapter_load(l.path[k], m, &l.a[k])) != DS_OK) {
            cli_lora_free(&l);
            ds_model_free(m);
            return cli_fail("export-lora", l.path[k], s);
        }
    cfg.progress = on_tensor;
    s = ds_lora_merge(base, l.a, l.scale, l.n, out, &cfg);
    cli_lora_free(&l);
    ds_model_free(m);
    if (s != DS_OK) return cli_fail("export-lora", NULL, s);
    fprintf(stderr, "export-lora: wrote %s\n", out);
    return 0;
}
