/* cmd_run.c - `deepseek run`: complete a prompt, streaming the text to stdout. */
#include "cmd_run.h"
#include <time.h>

static const char *run_usage =
    "usage: deepseek run -m FILE (-p TEXT | -f FILE) [options]\n"
    "Prints only the completion (and a final newline) on stdout; speed figures go to stderr.\n"
    "The prompt is plain text: special-token markup in it stays text unless --special is given.\n"
    "  -p TEXT             the prompt\n"
    "  -f FILE             read the prompt from FILE ('-': standard input)\n"
    "  --stop TEXT         stop when TEXT appears (repeatable, up to 8)\n"
    GEN_OPTS_HELP("128");

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
    static const struct {
        const char *name;
        double hi;
    } floats[] = {{"--temp", 100}, {"--top-p", 1}, {"--min-p", 1}, {"--repeat-penalty", 100}};
    static const struct {
        const char *name;
        long lo, hi;
    } ints[] = {{"-n", -1, 2147483647L}, {"--top-k", 0, 2147483647L}, {"--seed", 0, 2147483647L}, {"-t", 1, CLI_MAX_THREADS}, {"-c", 1, 2147483647L}};
    const char *a = argv[*i], *v;
    long l;
    double d;
    size_t k;
    if (!strcmp(a, "--special")) {
        o->special = 1;
        return 1;
    }
    if (!strcmp(a, "-m")) {
        if (!(o->model = cli_value(argc, argv, i, cmd))) return -1;
        return 1;
    }
    if (!strcmp(a, "--lora")) return cli_lora_parse(&o->lora, argc, argv, i, cmd);
    for (k = 0; k < sizeof floats / sizeof floats[0]; k++) {
        if (strcmp(a, floats[k].name)) continue;
        if (!(v = cli_value(argc, argv, i, cmd)) || !cli_float_opt(cmd, a, v, 0.0, floats[k].hi, &d)) return -1;
        if (k == 0) o->sampler.temperature = (float)d;
        else if (k == 1) o->sampler.top_p = (float)d;
        else if (k == 2) o->sampler.min_p = (float)d;
        else o->sampler.repeat_penalty = (float)d;
        return 1;
    }
    for (k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (strcmp(a, ints[k].name)) continue;
        if (!(v = cli_value(argc, argv, i, cmd)) || !cli_int_opt(cmd, a, v, ints[k].lo, ints[k].hi, &l)) return -1;
        if (k == 0) o->n_predict = (int)l;
        else if (k == 1) o->sampler.top_k = (int)l;
        else if (k == 2) o->sampler.seed = (uint64_t)l;
        else if (k == 3) o->n_threads = (int)l;
        else o->n_ctx = (int)l;
        return 1;
    }
    return 0;
}

int gen_opts_open(gen_opts *o, const char *cmd, ds_model **m, ds_session **s) {
    ds_session_config sp;
    ds_status st;
    int trained;
    if (!o->model) return cli_usage_error(cmd, "-m FILE is required");
    if ((st = ds_model_load(o->model, NULL, m)) != DS_OK) return cli_fail(cmd, o->model, st);
    trained = ds_model_get_config(*m)->n_ctx;
    if (o->n_ctx > 0 && trained > 0 && o->n_ctx > trained) {
        fprintf(stderr, "deepseek %s: -c %d is longer than the context the model was trained with (%d tokens); its text would turn to garbage past that\n", cmd, o->n_ctx, trained);
        ds_model_free(*m);
        return 2;
    }
    memset(&sp, 0, sizeof sp);
    sp.n_ctx = o->n_ctx;
    sp.n_threads = o->n_threads;
    if ((st = ds_session_create(*m, &sp, s)) != DS_OK) {
        ds_model_free(*m);
        return cli_fail(cmd, "session", st);
    }
    if (cli_lora_attach(&o->lora, cmd, *m, *s) != 0) {
        gen_opts_close(o, *m, *s);
        return 1;
    }
    return 0;
}

void gen_opts_close(gen_opts *o, ds_model *m, ds_session *s) {
    ds_session_free(s);
    cli_lora_free(&o->lora);
    ds_model_free(m);
}

int gen_print(void *user, int32_t token, const char *text, size_t len) {
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return user ? *(volatile int *)user : 0;
}

/* the prompt's ids: BOS in front when the vocabulary asks for it; NUL bytes are text */
static ds_status run_tokenize(const ds_model *m, const char *text, size_t len, int special, int32_t **ids, size_t *n) {
    const ds_tokenizer *t = ds_model_tokenizer(m);
    int flags = (special ? DS_TOKENIZE_PARSE_SPECIAL : 0) | (ds_tokenizer_adds_bos(t) ? DS_TOKENIZE_ADD_BOS : 0);
    size_t cap = len + 8;
    ds_status st;
    for (;;) {
        if (!(*ids = (int32_t *)malloc(cap * sizeof(int32_t)))) return DS_ERR_NO_MEMORY;
        st = ds_tokenize(t, text, len, flags, *ids, cap, n);
        if (st != DS_ERR_BOUNDS || *n <= cap) break;
        free(*ids);
        cap = *n;
    }
    if (st != DS_OK) free(*ids);
    return st;
}

int ds_cmd_run(int argc, char **argv) {
    gen_opts o;
    const char *prompt = NULL, *file = NULL, *stop[8];
    char *text = NULL;
    size_t len = 0, n_ids = 0;
    int32_t *ids = NULL;
    ds_model *m;
    ds_session *s;
    ds_generate_config gc;
    ds_generator *g = NULL;
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
            if (!*stop[n_stop - 1]) return cli_usage_error("run", "--stop needs a non-empty text");
        } else {
            return cli_usage_error("run", "unknown option '%s'", argv[i]);
        }
    }
    if (!prompt == !file) return cli_usage_error("run", "give exactly one of -p TEXT and -f FILE");
    if (!o.model) return cli_usage_error("run", "-m FILE is required");
    if (file && !(prompt = text = cli_read_input("run", file, &len))) return 1;
    if (!file) len = strlen(prompt);
    if ((rc = gen_opts_open(&o, "run", &m, &s)) != 0) {
        free(text);
        return rc;
    }
    memset(&gc, 0, sizeof gc);
    gc.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
    gc.sampler = o.sampler;
    gc.stop = stop;
    gc.n_stop = n_stop;
    gc.on_token = gen_print;
    st = run_tokenize(m, prompt, len, o.special, &ids, &n_ids);
    if (st == DS_OK && n_ids == 0) {
        fprintf(stderr, "deepseek run: the prompt is empty\n");
        rc = 1;
    } else if (st == DS_OK && n_ids > (size_t)ds_session_n_ctx(s)) {
        fprintf(stderr, "deepseek run: the prompt has %zu tokens; the context holds %d (-c)\n", n_ids, ds_session_n_ctx(s));
        rc = 1;
    } else if (st == DS_OK && o.n_predict != 0) {
        if ((st = ds_generator_create_tokens(s, ids, (int)n_ids, &gc, &g)) == DS_OK) st = ds_generator_step(g, 0, 0);
        if (st == DS_OK) {
            const ds_generate_result *r = ds_generator_result(g);
            printf("\n");
            fflush(stdout);
            if (r->state == DS_GEN_CONTEXT_FULL) fprintf(stderr, "deepseek run: the context (%d tokens) is full\n", ds_session_n_ctx(s));
            fprintf(stderr, "deepseek run: prompt %d tokens in %.2f s (%.1f tok/s), generated %d tokens in %.2f s (%.1f tok/s)\n",
                    r->n_prompt, r->prompt_seconds, r->n_prompt / (r->prompt_seconds + 1e-9), r->n_generated, r->gen_seconds,
                    r->n_generated / (r->gen_seconds + 1e-9));
        }
        ds_generator_free(g);
    }
    if (st != DS_OK) rc = cli_fail("run", "generate", st);
    gen_opts_close(&o, m, s);
    free(ids);
    free(text);
    return rc;
}
