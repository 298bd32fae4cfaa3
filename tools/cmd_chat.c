/* cmd_chat.c - `deepseek chat`: talk with a model through its chat template. Each turn sends
   the whole conversation; the session reuses the tokens it already holds, so only the new
   message is evaluated. Messages are plain text: only the template's own markup becomes special
   tokens (unless --special). Ctrl-C during a reply stops the reply; at the prompt it quits. */
#include "cmd_run.h"
#include <signal.h>

#define CHAT_MAX_LINE ((size_t)1 << 20)   /* longer messages are refused (their bytes skipped) */

static const char *chat_usage =
    "usage: deepseek chat -m FILE [--system TEXT] [options]\n"
    "Reads one message per line from stdin and streams the replies to stdout.\n"
    "Type /reset to start over; end of input (Ctrl-D) quits; Ctrl-C stops a reply.\n"
    "Messages are plain text: special-token markup in them stays text unless --special is given.\n"
    "  --system TEXT       a system message opening the conversation\n"
    GEN_OPTS_HELP("512");

typedef struct chat_log {
    ds_chat_message *msgs;
    int n, cap;
    int32_t *ids;   /* the formatted conversation */
    size_t ids_cap;
} chat_log;

static volatile sig_atomic_t chat_replying;
static volatile int chat_cancel;

static void chat_on_sigint(int sig) {
    (void)sig;
    if (!chat_replying) _Exit(130);
    chat_cancel = 1;
    signal(SIGINT, chat_on_sigint);
}

/* a copy of s[0..n) with a NUL after it (s may hold NUL bytes: they are text) */
static char *chat_memdup(const char *s, size_t n) {
    char *d = (char *)malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int chat_add(chat_log *c, const char *role, const char *content, size_t len) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        ds_chat_message *m = (ds_chat_message *)realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return 0;
        c->msgs = m;
        c->cap = cap;
    }
    c->msgs[c->n].role = role;
    c->msgs[c->n].content_len = len;
    if (!(c->msgs[c->n].content = chat_memdup(content, len))) return 0;
    c->n++;
    return 1;
}

static void chat_drop_last(chat_log *c) { free((void *)c->msgs[--c->n].content); }

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

static ds_status chat_format(chat_log *c, const ds_model *m, int flags, size_t *n) {
    ds_status st = ds_chat_tokenize(m, DS_CHAT_AUTO, c->msgs, c->n, 1, flags, c->ids, c->ids_cap, n);
    if (st == DS_ERR_BOUNDS) {
        free(c->ids);
        c->ids_cap = *n + 16;
        if (!(c->ids = (int32_t *)malloc(c->ids_cap * sizeof(int32_t)))) return DS_ERR_NO_MEMORY;
        st = ds_chat_tokenize(m, DS_CHAT_AUTO, c->msgs, c->n, 1, flags, c->ids, c->ids_cap, n);
    }
    return st;
}

/* Reads a line without its newline into *out (*len bytes; NUL bytes are kept as text); 0 at end
   of input. *bad: 1 when it was longer than CHAT_MAX_LINE (the rest of it is skipped). */
static int chat_read_line(char **out, size_t *len, int *bad) {
    size_t n = 0, cap = 256;
    char *s = (char *)malloc(cap);
    int ch;
    *bad = 0;
    *out = NULL;
    if (!s) return 0;
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n == CHAT_MAX_LINE) *bad = 1;
        if (*bad) continue;
        if (n + 1 == cap) {
            char *t = (char *)realloc(s, cap *= 2);
            if (!t) {
                *bad = 1;
                continue;
            }
            s = t;
        }
        s[n++] = (char)ch;
    }
    if (ch == EOF && n == 0 && !*bad) {
        free(s);
        return 0;
    }
    if (n && s[n - 1] == '\r') n--;
    s[n] = 0;
    *out = s;
    *len = n;
    return 1;
}

/* one reply to the conversation so far, appended to it; DS_ERR_STATE: the last message alone
   does not fit in the context (it is dropped) */
static ds_status chat_reply(chat_log *c, ds_session *s, const ds_generate_config *gc, int first, int flags) {
    ds_generator *g = NULL;
    ds_status st;
    size_t n = 0;
    for (;;) {
        if ((st = chat_format(c, ds_session_model(s), flags, &n)) != DS_OK) return st;
        if (n <= (size_t)ds_session_n_ctx(s) - 1 && (st = ds_generator_create_tokens(s, c->ids, (int)n, gc, &g)) != DS_ERR_STATE) break;
        if (!chat_drop_oldest(c, first)) {
            fprintf(stderr, "deepseek chat: the message makes the conversation %zu tokens long; the context holds %d (-c); not sent\n", n, ds_session_n_ctx(s));
            chat_drop_last(c);
            return DS_ERR_STATE;
        }
    }
    if (st != DS_OK) return st;
    chat_replying = 1;
    st = ds_generator_step(g, 0, 0);
    chat_replying = 0;
    if (st == DS_OK) {
        size_t reply_len = 0;
        const char *reply = ds_generator_text(g, &reply_len);
        if (!chat_add(c, "assistant", reply, reply_len)) st = DS_ERR_NO_MEMORY;
    }
    if (st == DS_OK && ds_generator_state(g) == DS_GEN_CONTEXT_FULL) fprintf(stderr, "\n[the context is full: older turns will be dropped]");
    if (st == DS_OK && ds_generator_state(g) == DS_GEN_CANCELLED) fprintf(stderr, "\n[interrupted]");
    ds_generator_free(g);
    return st;
}

static const char *chat_template_name(ds_chat_template t) {
    return t == DS_CHAT_CHATML ? "ChatML" : t == DS_CHAT_LLAMA3 ? "Llama-3" : t == DS_CHAT_DEEPSEEK2 ? "DeepSeek-V2" : t == DS_CHAT_DEEPSEEK3 ? "DeepSeek-V3" : "unknown";
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
    int i, rc, first, bad, flags;
    size_t line_len = 0;
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
    if (!o.model) return cli_usage_error("chat", "-m FILE is required");
    if ((rc = gen_opts_open(&o, "chat", &m, &s)) != 0) return rc;
    if ((st = ds_model_chat_template(m, &tmpl)) != DS_OK) {
        rc = cli_fail("chat", o.model, st);
        gen_opts_close(&o, m, s);
        return rc;
    }
    flags = o.special ? DS_TOKENIZE_PARSE_SPECIAL : 0;
    memset(&c, 0, sizeof c);
    memset(&gc, 0, sizeof gc);
    gc.max_tokens = o.n_predict < 0 ? 0 : o.n_predict;
    gc.sampler = o.sampler;
    gc.on_token = gen_print;
    gc.user = (void *)&chat_cancel;
    first = system ? 1 : 0;
    if (system && !chat_add(&c, "system", system, strlen(system))) st = DS_ERR_NO_MEMORY;
    signal(SIGINT, chat_on_sigint);
    fprintf(stderr, "deepseek chat: %s template; /reset starts over, Ctrl-D quits, Ctrl-C stops a reply\n> ", chat_template_name(tmpl));
    while (st == DS_OK && chat_read_line(&line, &line_len, &bad)) {
        if (bad) {
            fprintf(stderr, "deepseek chat: the message is longer than %zu bytes; not sent\n", CHAT_MAX_LINE);
        } else if (!strcmp(line, "/reset")) {
            while (c.n > first) chat_drop_last(&c);
        } else if (line_len) {
            chat_cancel = 0;
            if (!chat_add(&c, "user", line, line_len)) st = DS_ERR_NO_MEMORY;
            else if ((st = chat_reply(&c, s, &gc, first, flags)) == DS_ERR_STATE) st = DS_OK;
            else printf("\n");
            fflush(stdout);
        }
        free(line);
        fprintf(stderr, "> ");
    }
    rc = st == DS_OK ? 0 : cli_fail("chat", "reply", st);
    for (i = 0; i < c.n; i++) free((void *)c.msgs[i].content);
    free(c.msgs);
    free(c.ids);
    gen_opts_close(&o, m, s);
    return rc;
}
