/* cmd_chat.c - `deepseek chat`: talk with a model through its chat template. Each turn sends
   the whole conversation; the session reuses the tokens it already holds, so only the new
   message is evaluated. */
#include "cmd_run.h"

static const char *chat_usage =
    "usage: deepseek chat -m FILE [--system TEXT] [options]\n"
    "Reads one message per line from stdin and streams the replies to stdout.\n"
    "Type /reset to start over; end of input (Ctrl-D) quits.\n"
    "  --system TEXT       a system message opening the conversation\n"
    GEN_OPTS_HELP;

typedef struct chat_log {
    ds_chat_message *msgs;
    int n, cap;
    char *buf;      /* the formatted conversation */
    size_t buf_cap;
} chat_log;

static char *chat_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int chat_add(chat_log *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        ds_chat_message *m = (ds_chat_message *)realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return 0;
        c->msgs = m;
        c->cap = cap;
    }
    c->msgs[c->n].role = role;
    if (!(c->msgs[c->n].content = chat_strdup(content))) return 0;
    c->n++;
    return 1;
}

/* drops the oldest exchange after the system message; 0 when none is left */
static int chat_drop_oldest(chat_log *c, int first) {
    int i;
    if (c->n - first < 3) return 0;
    free((void *)c->msgs[first].content);
    free((void *)c->msgs[first + 1].content);
    for (i = first; i + 2 < c->n; i++) c->msgs[i] = c->msgs[i + 2];
    c->n -= 2;
    return 1;
}

static ds_status chat_format(chat_log *c, const ds_model *m) {
    size_t len;
    ds_status st = ds_chat_apply(m, DS_CHAT_AUTO, c->msgs, c->n, 1, c->buf, c->buf_cap, &len);
    if (st == DS_ERR_BOUNDS) {
        free(c->buf);
        c->buf_cap = len + 1;
        if (!(c->buf = (char *)malloc(c->buf_cap))) return DS_ERR_NO_MEMORY;
        st = ds_chat_apply(m, DS_CHAT_AUTO, c->msgs, c->n, 1, c->buf, c->buf_cap, &len);
    }
    return st;
}

static int chat_print(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* reads a line of any length without its newline; NULL at end of input */
static char *chat_read_line(void) {
    size_t n = 0, cap = 256;
    char *s = (char *)malloc(cap);
    int ch;
    if (!s) return NULL;
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n + 1 == cap) {
            char *t = (char *)realloc(s, cap *= 2);
            if (!t) break;
            s = t;
        }
        s[n++] = (char)ch;
    }
    if (ch == EOF && n == 0) {
        free(s);
        return NULL;
    }
    if (n && s[n - 1] == '\r') n--;
    s[n] = 0;
    return s;
}

/* one reply to the conversation so far, appended to it */
static ds_status chat_reply(chat_log *c, ds_session *s, const ds_generate_config *gc, int first) {
    ds_generator *g = NULL;
    ds_status st;
    for (;;) {
        if ((st = chat_format(c, ds_session_model(s))) != DS_OK) return st;
        st = ds_generator_create(s, c->buf, gc, &g);
        if (st != DS_ERR_STATE || !chat_drop_oldest(c, first)) break;
    }
    if (st == DS_OK) st = ds_generator_step(g, 0, 0);
    if (st == DS_OK && !chat_add(c, "assistant", ds_generator_text(g, NULL))) st = DS_ERR_NO_MEMORY;
    if (st == DS_OK && ds_generator_state(g) == DS_GEN_CONTEXT_FULL) fprintf(stderr, "\n[the context is full: older turns will be dropped]");
    ds_generator_free(g);
    return st;
}

int ds_cmd_chat(int argc, char **argv) {
    gen_opts o;
    const char *system = NULL;
    chat_log c;
    ds_model *m;
    ds_session *s;
    ds_generate_config gc;
    ds_chat_template tmpl;
    ds_status st = DS_OK;
    char *line;
    int i, rc, first;
    gen_opts_init(&o);
    o.n_predict = 512;
    for (i = 1; i < argc; i++) {
        int k = gen_opts_parse(&o, argc, argv, &i, "chat");
        if (k < 0) return 2;
        if (k) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(chat_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--system")) {
            if (!(system = cli_value(argc, argv, &i, "chat"))) return 2;
        } else {
            return cli_usage_error("chat", "unknown option '%s'", argv[i]);
        }
    }
    if ((rc = gen_opts_open(&o, "chat", &m, &s)) != 0) return rc;
    if ((st = ds_model_chat_template(m, &tmpl)) != DS_OK) {
        rc = cli_fail("chat", o.model, st);
        ds_session_free(s);
        ds_model_free(m);
        return rc;
    }
    memset(&c, 0, sizeof c);
    memset(&gc, 0, sizeof gc);
    gc.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
    gc.sampler = o.sampler;
    gc.on_token = chat_print;
    first = system ? 1 : 0;
    if (system && !chat_add(&c, "system", system)) st = DS_ERR_NO_MEMORY;
    fprintf(stderr, "deepseek chat: %s template; /reset starts over, Ctrl-D quits\n> ", tmpl == DS_CHAT_CHATML ? "ChatML" : "Llama-3");
    while (st == DS_OK && (line = chat_read_line()) != NULL) {
        if (!strcmp(line, "/reset")) {
            while (c.n > first) free((void *)c.msgs[--c.n].content);
        } else if (line[0]) {
            if (!chat_add(&c, "user", line)) st = DS_ERR_NO_MEMORY;
            else st = chat_reply(&c, s, &gc, first);
            printf("\n");
        }
        free(line);
        fprintf(stderr, "> ");
    }
    rc = st == DS_OK ? 0 : cli_fail("chat", "reply", st);
    for (i = 0; i < c.n; i++) free((void *)c.msgs[i].content);
    free(c.msgs);
    free(c.buf);
    ds_session_free(s);
    ds_model_free(m);
    return rc;
}
