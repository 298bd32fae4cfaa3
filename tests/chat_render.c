/* chat_render.c - what tests/check_chat_template.py compares with Jinja: renders a conversation
   with ds_chat_apply_source (a template's Jinja source) or ds_chat_apply (a model's, with
   DS_CHAT_AUTO) and writes the text to stdout.
     chat_render (--source FILE | --model FILE) MESSAGES ADD_ASSISTANT
   MESSAGES holds role NUL content NUL ... (a file). Exit status 1 with the reason on stderr. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        if (f) fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    size_t src_len = 0, msg_len = 0, at = 0, len = 0;
    char *src, *raw, *out;
    ds_chat_message msgs[64];
    ds_model *m = NULL;
    ds_status s;
    int n = 0, model = argc == 5 && !strcmp(argv[1], "--model");
    if (argc != 5 || (!model && strcmp(argv[1], "--source"))) {
        fprintf(stderr, "usage: chat_render (--source FILE | --model FILE) MESSAGES ADD_ASSISTANT\n");
        return 2;
    }
    src = model ? NULL : slurp(argv[2], &src_len);
    raw = slurp(argv[3], &msg_len);
    if ((!model && !src) || !raw) return fprintf(stderr, "chat_render: cannot read the inputs\n"), 1;
    while (at < msg_len && n < 64) {
        msgs[n].role = raw + at;
        at += strlen(raw + at) + 1;
        msgs[n].content = raw + at;
        msgs[n].content_len = 0;
        at += strlen(raw + at) + 1;
        n++;
    }
    if (model && (s = ds_model_load(argv[2], NULL, &m)) != DS_OK) return fprintf(stderr, "chat_render: %s\n", ds_last_error()), 1;
    s = model ? ds_chat_apply(m, DS_CHAT_AUTO, msgs, n, atoi(argv[4]), NULL, 0, &len) : ds_chat_apply_source(src, src_len, msgs, n, atoi(argv[4]), NULL, 0, &len);
    out = (char *)malloc(len + 1);
    if (out) s = model ? ds_chat_apply(m, DS_CHAT_AUTO, msgs, n, atoi(argv[4]), out, len + 1, &len) : ds_chat_apply_source(src, src_len, msgs, n, atoi(argv[4]), out, len + 1, &len);
    if (!out || s != DS_OK) return fprintf(stderr, "chat_render: %s\n", ds_last_error()), 1;
    fwrite(out, 1, len, stdout);
    free(out);
    free(src);
    free(raw);
    ds_model_free(m);
    return 0;
}
