/* cmd_run.c - `deepseek run`: complete a prompt, streaming the text to stdout. */
#include "cmd_run.h"
#include <time.h>

static const char *run_usage =
    "usage: deepseek run -m FILE (-p TEXT | -f FILE) [options]\n"
    "Prints only the completion (and a final newline) on stdout; speed figures go to stderr.\n"
    "  -p TEXT             the prompt\n"
    "  -f FILE             read the prompt from FILE\n"
    "  --stop TEXT         stop when TEXT appears (repeatable, up to 8)\n"
    GEN_OPTS_HELP;

void gen_opts_init(gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->sampler.temperature = 0.8f;
    o->sampler.top_k = 40;
    o->sampler.top_p = 0.95f;
    o->sampler.min_p = 0.05f;
    o->sampler.repeat_penalty = 1.0f;
    o->sampler.seed = (uint64_t)time(NULL) * 2654435761u + (uint64_t)clock();
}

int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i, const char *cmd) {
    const char *a = argv[*i], *v;
    long l;
    double d;
    int is_float = !strcmp(a, "--temp") || !strcmp(a, "--top-p") || !strcmp(a, "--min-p") || !strcmp(a, "--repeat-penalty");
    int is_int = !strcmp(a, "-n") || !strcmp(a, "--top-k") || !strcmp(a, "--seed") || !strcmp(a, "-t") || !strcmp(a, "-c");
    if (strcmp(a, "-m") && !is_float && !is_int) return 0;
    if (!(v = cli_value(argc, argv, i, cmd))) return -1;
    if (!strcmp(a, "-m")) {
        o->model = v;
        return 1;
    }
    if (is_float) {
        if (!cli_float(v, 0.0, 100.0, &d)) return cli_usage_error(cmd, "%s needs a number in [0, 100], not '%s'", a, v), -1;
        if (!strcmp(a, "--temp")) o->sampler.temperature = (float)d;
        else if (!strcmp(a, "--top-p")) o->sampler.top_p = (float)d;
        else if (!strcmp(a, "--min-p")) o->sampler.min_p = (float)d;
        else o->sampler.repeat_penalty = (float)d;
        return 1;
    }
    if (!cli_int(v, -1, 2147483647L, &l)) return cli_usage_error(cmd, "%s needs an integer, not '%s'", a, v), -1;
    if (!strcmp(a, "-n")) o->n_predict = (int)l;
    else if (!strcmp(a, "--top-k")) o->sampler.top_k = l < 0 ? 0 : (int)l;
    else if (!strcmp(a, "--seed")) o->sampler.seed = (uint64_t)l;
    else if (!strcmp(a, "-t")) o->n_threads = l < 0 ? 0 : (int)l;
    else o->n_ctx = l < 0 ? 0 : (int)l;
    return 1;
}

int gen_opts_open(const gen_opts *o, const char *cmd, ds_model **m, ds_session **s) {
    ds_session_params sp;
    ds_status st;
    if (!o->model) return cli_usage_error(cmd, "-m FILE is required");
    if ((st = ds_model_load(o->model, NULL, m)) != DS_OK) return cli_fail(cmd, o->model, st);
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = o->n_ctx;
    sp.n_threads = o->n_threads;
    if ((st = ds_session_create(*m, &sp, s)) != DS_OK) {
        ds_model_free(*m);
        return cli_fail(cmd, "session", st);
    }
    return 0;
}

static int run_print(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int ds_cmd_run(int argc, char **argv) {
    gen_opts o;
    const char *prompt = NULL, *file = NULL, *stop[8];
    char *text = NULL;
    ds_model *m;
    ds_session *s;
    ds_generate_config gc;
    ds_generate_result r;
    ds_status st;
    int i, n_stop = 0, rc;
    gen_opts_init(&o);
    for (i = 1; i < argc; i++) {
        int k = gen_opts_parse(&o, argc, argv, &i, "run");
        if (k < 0) return 2;
        if (k) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(run_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-p")) {
            if (!(prompt = cli_value(argc, argv, &i, "run"))) return 2;
        } else if (!strcmp(argv[i], "-f")) {
            if (!(file = cli_value(argc, argv, &i, "run"))) return 2;
        } else if (!strcmp(argv[i], "--stop")) {
            if (n_stop == 8) return cli_usage_error("run", "at most 8 --stop strings");
            if (!(stop[n_stop++] = cli_value(argc, argv, &i, "run"))) return 2;
        } else {
            return cli_usage_error("run", "unknown option '%s'", argv[i]);
        }
    }
    if (!prompt == !file) return cli_usage_error("run", "give exactly one of -p TEXT and -f FILE");
    if (file && !(prompt = text = cli_read_file(file, NULL))) {
        fprintf(stderr, "deepseek run: %s: cannot read\n", file);
        return 1;
    }
    if ((rc = gen_opts_open(&o, "run", &m, &s)) != 0) {
        free(text);
        return rc;
    }
    memset(&gc, 0, sizeof gc);
    gc.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
    gc.sampler = o.sampler;
    gc.stop = stop;
    gc.n_stop = n_stop;
    gc.on_token = run_print;
    st = o.n_predict == 0 ? DS_OK : ds_generate(s, prompt, &gc, &r);
    if (st == DS_OK && o.n_predict != 0) {
        printf("\n");
        fflush(stdout);
        fprintf(stderr, "deepseek run: prompt %d tokens in %.2f s (%.1f tok/s), generated %d tokens in %.2f s (%.1f tok/s)\n",
                r.n_prompt, r.prompt_seconds, r.n_prompt / (r.prompt_seconds + 1e-9), r.n_generated, r.gen_seconds,
                r.n_generated / (r.gen_seconds + 1e-9));
    }
    rc = st == DS_OK ? 0 : cli_fail("run", "generate", st);
    ds_session_free(s);
    ds_model_free(m);
    free(text);
    return rc;
}
