/* cmd_quant_eval.c - `deepseek quant-eval`: what quantizing a model cost, one row per file:
   the base and each quantized file run on the same chunks of a text (perplexity's method and
   code, cmd_perplexity.c), compared position by position with the base as llama-perplexity
   --kl-divergence does (mean KL divergence, "same top p"), with their sizes and llama-bench's
   pp512 / tg128 speeds (bench's code). Optional CSV and an SVG chart of KLD against size. */
#include "cli.h"
#include <math.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: deepseek quant-eval -m BASE.gguf --quant Q1.gguf [Q2.gguf ...] -f TEXT [-c 512]\n"
            "                           [--chunks N] [-t THREADS] [--csv OUT.csv] [--svg OUT.svg]\n"
            "                           [--no-speed] [-r REPS]\n"
            "\n"
            "Runs the base model and every quantized file on the same chunks of TEXT (perplexity's\n"
            "method: chunks of c tokens, the second half of each scored) and prints one row per\n"
            "model: its main weight type, file size, bits per weight (tensor bytes x 8 / elements),\n"
            "perplexity, ln(PPL / PPL(base)), mean KL(base || model) over the scored tokens, how often\n"
            "both rank the same token first (llama.cpp's \"same top p\"), and pp512 / tg128 tokens/s\n"
            "measured as `deepseek bench` does. All models stay loaded together.\n"
            "\n"
            "  -m FILE       the base model (the reference, e.g. F32)\n"
            "  --quant FILE...  one or more models to compare with it (same vocabulary)\n"
            "  -f FILE       text file (needs at least 2*c tokens)\n"
            "  -c N          chunk length in tokens (default 512 or the model's context when shorter)\n"
            "  --chunks N    score only the first N chunks\n"
            "  -t N          threads in [1, 512] (default: all CPUs)\n"
            "  --csv FILE    also write the table as CSV\n"
            "  --svg FILE    also write a chart: bits per weight (x) against mean KLD (y, log scale)\n"
            "  --no-speed    skip the pp512 / tg128 measurements\n"
            "  -r N          speed runs per model, best kept (default 3)\n");
}

#define QE_MAX 64

typedef struct qe_args {
    const char *base, *text, *csv, *svg, *quant[QE_MAX];
    int n_quant, ctx, chunks, threads, no_speed, reps;
} qe_args;

static int parse_args(int argc, char **argv, qe_args *a) {
    int i;
    long v;
    memset(a, 0, sizeof *a);
    a->reps = 3;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *val;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) return 1;
        if (!strcmp(o, "--no-speed")) {
            a->no_speed = 1;
            continue;
        }
        if (!strcmp(o, "--quant")) {
            if (i + 1 >= argc || argv[i + 1][0] == '-') return cli_usage_error("quant-eval", "--quant needs at least one file");
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (a->n_quant == QE_MAX) return cli_usage_error("quant-eval", "at most %d files after --quant", QE_MAX);
                a->quant[a->n_quant++] = argv[++i];
            }
            continue;
        }
        if (strcmp(o, "-m") && strcmp(o, "-f") && strcmp(o, "-c") && strcmp(o, "-t") && strcmp(o, "--chunks") && strcmp(o, "--csv") &&
            strcmp(o, "--svg") && strcmp(o, "-r"))
            return cli_usage_error("quant-eval", "unknown option '%s'", o);
        if (!(val = cli_value(argc, argv, &i, "quant-eval"))) return 2;
        if (!strcmp(o, "-m")) a->base = val;
        else if (!strcmp(o, "-f")) a->text = val;
        else if (!strcmp(o, "--csv")) a->csv = val;
        else if (!strcmp(o, "--svg")) a->svg = val;
        else if (!cli_int_opt("quant-eval", o, val, !strcmp(o, "-c") ? 4 : 1, !strcmp(o, "-t") ? CLI_MAX_THREADS : 1 << 20, &v)) return 2;
        else if (!strcmp(o, "-c")) a->ctx = (int)v;
        else if (!strcmp(o, "-t")) a->threads = (int)v;
        else if (!strcmp(o, "-r")) a->reps = (int)v;
        else a->chunks = (int)v;
    }
    if (!a->base || !a->text || !a->n_quant) return cli_usage_error("quant-eval", "-m BASE, --quant FILE... and -f TEXT are required");
    if (a->csv && !cli_check_output("quant-eval", a->csv)) return 2;
    if (a->svg && !cli_check_output("quant-eval", a->svg)) return 2;
    return 0;
}

typedef struct qe_row {
    const char *path;
    cli_file_info info;
    double ppl, dlnppl, kld, kld_err, top, top_err, pp, tg;
} qe_row;

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void print_table(FILE *f, const qe_row *r, int n, int speed) {
    int i;
    fprintf(f, "%-32s %-6s %9s %6s %10s %9s %19s %16s", "model", "type", "MiB", "bpw", "PPL", "dlnPPL", "mean KLD", "same top %");
    if (speed) fprintf(f, " %9s %9s", "pp512", "tg128");
    fputc('\n', f);
    for (i = 0; i < n; i++) {
        fprintf(f, "%-32s %-6s %9.2f %6.3f %10.4f %+9.5f %9.6f+-%8.6f %7.3f+-%6.3f", base_name(r[i].path), ds_type_name(r[i].info.main_type),
                (double)r[i].info.file / 1048576.0, 8 * r[i].info.bytes / r[i].info.weights, r[i].ppl, r[i].dlnppl, r[i].kld, r[i].kld_err,
                100 * r[i].top, 100 * r[i].top_err);
        if (speed) fprintf(f, " %9.2f %9.2f", r[i].pp, r[i].tg);
        fputc('\n', f);
    }
}

static int write_csv(const char *path, const qe_row *r, int n) {
    FILE *f = fopen(path, "w");
    int i;
    if (!f) return fprintf(stderr, "deepseek quant-eval: %s: cannot write\n", path), 1;
    fprintf(f, "model,type,file_bytes,bits_per_weight,ppl,ln_ppl_ratio,mean_kld,mean_kld_err,same_top,same_top_err,pp512_tok_s,tg128_tok_s\n");
    for (i = 0; i < n; i++)
        fprintf(f, "\"%s\",%s,%llu,%.4f,%.6f,%.6f,%.8f,%.8f,%.6f,%.6f,%.3f,%.3f\n", base_name(r[i].path), ds_type_name(r[i].info.main_type),
                (unsigned long long)r[i].info.file, 8 * r[i].info.bytes / r[i].info.weights, r[i].ppl, r[i].dlnppl, r[i].kld, r[i].kld_err, r[i].top,
                r[i].top_err, r[i].pp, r[i].tg);
    if (fclose(f)) return fprintf(stderr, "deepseek quant-eval: %s: cannot write\n", path), 1;
    return 0;
}

/* name escaped for XML text */
static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* x: bits per weight, linear; y: mean KLD, log10 (rows with KLD 0, the base, are left out) */
static int write_svg(const char *path, const qe_row *r, int n) {
    const double W = 720, H = 480, L = 70, R = 20, T = 30, B = 50;
    double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9, d;
    int i, k;
    FILE *f = fopen(path, "w");
    if (!f) return fprintf(stderr, "deepseek quant-eval: %s: cannot write\n", path), 1;
    for (i = 0; i < n; i++) {
        double x = 8 * r[i].info.bytes / r[i].info.weights;
        if (!(r[i].kld > 0)) continue;
        x0 = fmin(x0, x), x1 = fmax(x1, x);
        y0 = fmin(y0, log10(r[i].kld)), y1 = fmax(y1, log10(r[i].kld));
    }
    if (x1 < x0) x0 = 0, x1 = 1, y0 = -3, y1 = 0;
    x0 = floor(x0 - 0.5), x1 = ceil(x1 + 0.5), y0 = floor(y0), y1 = ceil(y1);
    if (y1 <= y0) y1 = y0 + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\">mean KL divergence to the base against bits per weight</text>\n", W / 2);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, H - B);
    for (d = x0; d <= x1 + 1e-9; d += 1) {
        double px = L + (d - x0) / (x1 - x0) * (W - L - R);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>", px, T, px, H - B);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n", px, H - B + 16, d);
    }
    for (k = (int)y0; k <= (int)y1; k++) {
        double py = H - B - (k - y0) / (y1 - y0) * (H - T - B);
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>", L, py, W - R, py);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", L - 6, py + 4, k);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">bits per weight</text>\n", (L + W - R) / 2, H - 12);
    fprintf(f, "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">mean KLD</text>\n", (T + H - B) / 2, (T + H - B) / 2);
    for (i = 0; i < n; i++) {
        double px, py;
        if (!(r[i].kld > 0)) continue;
        px = L + (8 * r[i].info.bytes / r[i].info.weights - x0) / (x1 - x0) * (W - L - R);
        py = H - B - (log10(r[i].kld) - y0) / (y1 - y0) * (H - T - B);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#c33\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", px, py, px + 6, py - 4);
        svg_text(f, base_name(r[i].path));
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    if (fclose(f)) return fprintf(stderr, "deepseek quant-eval: %s: cannot write\n", path), 1;
    return 0;
}

static int run(const qe_args *a, ds_model **models, qe_row *rows) {
    int n = a->n_quant + 1, i, rc;
    cli_score *sc = (cli_score *)calloc((size_t)n, sizeof *sc);
    ds_pool *pool = NULL;
    ds_pool_config pc;
    ds_status e;
    if (!sc) return fprintf(stderr, "deepseek quant-eval: out of memory\n"), 1;
    if ((rc = cli_score_text("quant-eval", models, n, a->text, a->ctx, a->chunks, a->threads, NULL, sc))) {
        free(sc);
        return rc;
    }
    for (i = 0; i < n; i++) {
        rows[i].ppl = cli_score_ppl(&sc[i]);
        rows[i].dlnppl = log(rows[i].ppl / rows[0].ppl);
        if (i) cli_score_stats(&sc[i], &rows[i].kld, &rows[i].kld_err, &rows[i].top, &rows[i].top_err);
        else rows[i].top = 1;
    }
    free(sc);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = a->threads;
    if (!a->no_speed && (e = ds_pool_create(&pc, &pool)) != DS_OK) return cli_fail("quant-eval", "threads", e);
    for (i = 0; !a->no_speed && i < n; i++) {
        fprintf(stderr, "quant-eval: speed of %s (pp512, tg128, %d runs) ...\n", base_name(rows[i].path), a->reps);
        if ((e = cli_bench_speed(models[i], pool, 512, 128, a->reps, &rows[i].pp, &rows[i].tg)) != DS_OK) {
            ds_pool_free(pool);
            return cli_fail("quant-eval", rows[i].path, e);
        }
    }
    ds_pool_free(pool);
    print_table(stdout, rows, n, !a->no_speed);
    if (a->csv && (rc = write_csv(a->csv, rows, n))) return rc;
    if (a->svg && (rc = write_svg(a->svg, rows, n))) return rc;
    return 0;
}

int ds_cmd_quant_eval(int argc, char **argv) {
    qe_args a;
    ds_model *models[QE_MAX + 1];
    qe_row rows[QE_MAX + 1];
    ds_status e = DS_OK;
    int r = parse_args(argc, argv, &a), i, n;
    if (r == 1) {
        usage(stdout);
        return 0;
    }
    if (r) return r;
    n = a.n_quant + 1;
    memset(models, 0, sizeof models);
    memset(rows, 0, sizeof rows);
    for (i = 0; i < n && e == DS_OK; i++) {
        rows[i].path = i ? a.quant[i - 1] : a.base;
        if ((e = cli_file_info_get(rows[i].path, &rows[i].info)) == DS_OK) e = ds_model_load(rows[i].path, NULL, &models[i]);
        if (e != DS_OK) r = cli_fail("quant-eval", rows[i].path, e);
    }
    if (e == DS_OK) r = run(&a, models, rows);
    for (i = 0; i < n; i++) ds_model_free(models[i]);
    return r;
}
