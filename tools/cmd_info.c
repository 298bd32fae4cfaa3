/* deepseek info - what a GGUF file holds: architecture, hyper-parameters, tensor types, sizes. */
#include "cli.h"

static const char *info_usage =
    "usage: deepseek info -m FILE [--tensors]\n"
    "\n"
    "Reads a GGUF file (validating it completely) and prints its format, architecture, every\n"
    "metadata key (long strings shortened, long arrays summarized as \"[49152 strings]\"), the\n"
    "tensor count and size per type, and the totals.\n"
    "\n"
    "  -m, --model FILE   the GGUF file\n"
    "  --tensors          also list every tensor: name, type, shape, bytes, offset\n"
    "  -h, --help         this help\n";

#define INFO_STR_SHOWN 60   /* longest string value printed whole */
#define INFO_ARR_SHOWN 4    /* longest array printed element by element */

/* a string value quoted, with control characters escaped, cut at a UTF-8 boundary */
static void print_str(ds_str s, size_t max) {
    size_t i, n = s.len;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s.ptr[n] & 0xc0) == 0x80) n--;
    }
    putchar('"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < s.len) printf("... (%zu bytes)", s.len);
}

static size_t scalar_size(ds_gguf_type t) {
    switch (t) {
    case DS_GGUF_U8: case DS_GGUF_I8: case DS_GGUF_BOOL: return 1;
    case DS_GGUF_U16: case DS_GGUF_I16: return 2;
    case DS_GGUF_U64: case DS_GGUF_I64: case DS_GGUF_F64: return 8;
    default: return 4;
    }
}

/* one scalar from its little-endian bytes */
static void print_scalar(ds_gguf_type t, const uint8_t *p) {
    uint64_t u = 0;
    size_t k;
    for (k = 0; k < scalar_size(t); k++) u |= (uint64_t)p[k] << (8 * k);
    switch (t) {
    case DS_GGUF_I8: printf("%d", (int)(int8_t)u); break;
    case DS_GGUF_I16: printf("%d", (int)(int16_t)u); break;
    case DS_GGUF_I32: printf("%ld", (long)(int32_t)u); break;
    case DS_GGUF_I64: printf("%lld", (long long)(int64_t)u); break;
    case DS_GGUF_BOOL: fputs(u ? "true" : "false", stdout); break;
    case DS_GGUF_F32: {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        printf("%g", f);
        break;
    }
    case DS_GGUF_F64: {
        double d;
        memcpy(&d, &u, 8);
        printf("%g", d);
        break;
    }
    default: printf("%llu", (unsigned long long)u); break;
    }
}

static void print_array(const ds_gguf *g, const ds_gguf_kv *kv, const char *key) {
    uint64_t i;
    if (kv->arr_len > INFO_ARR_SHOWN) {
        printf("[%llu %s%s]", (unsigned long long)kv->arr_len, ds_gguf_type_name(kv->arr_type), kv->arr_type == DS_GGUF_STRING ? "s" : "");
        return;
    }
    putchar('[');
    if (kv->arr_type == DS_GGUF_STRING) {
        ds_str s[INFO_ARR_SHOWN];
        ds_gguf_get_arr_str(g, key, s, kv->arr_len);
        for (i = 0; i < kv->arr_len; i++) {
            if (i) fputs(", ", stdout);
            print_str(s[i], INFO_STR_SHOWN);
        }
    } else {
        for (i = 0; i < kv->arr_len; i++) {
            if (i) fputs(", ", stdout);
            print_scalar(kv->arr_type, kv->data + i * scalar_size(kv->arr_type));
        }
    }
    putchar(']');
}

static void print_kv(const ds_gguf *g, const ds_gguf_kv *kv) {
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.ptr);
    printf("  %-40s %-7s ", key, ds_gguf_type_name(kv->type));
    if (kv->type == DS_GGUF_ARRAY) {
        print_array(g, kv, key);
    } else if (kv->type == DS_GGUF_STRING) {
        ds_str s;
        ds_gguf_get_str(g, key, &s);
        print_str(s, INFO_STR_SHOWN);
    } else {
        print_scalar(kv->type, kv->data);
    }
    putchar('\n');
}

static void print_size(uint64_t bytes) {
    printf("%llu bytes (%.1f MiB)", (unsigned long long)bytes, (double)bytes / (1024.0 * 1024.0));
}

static void print_tensor_list(const ds_gguf *g) {
    int64_t i;
    int d;
    printf("\ntensors:\n  %-40s %-5s %-24s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        char shape[64];
        int n = 0;
        shape[0] = 0;
        for (d = 0; d < t->n_dims; d++) n += snprintf(shape + n, sizeof shape - (size_t)n, d ? " x %lld" : "%lld", (long long)t->ne[d]);
        printf("  %-40.*s %-5s %-24s %12llu %12llu\n", (int)t->name.len, t->name.ptr, ds_type_name(t->type), shape, (unsigned long long)t->nbytes, (unsigned long long)t->offset);
    }
}

static void print_type_table(const ds_gguf *g) {
    int64_t count[DS_TYPE_COUNT_] = {0}, i, n_params = 0;
    uint64_t bytes[DS_TYPE_COUNT_] = {0}, total = 0;
    int t;
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *x = ds_gguf_tensor_at(g, i);
        count[x->type]++;
        bytes[x->type] += x->nbytes;
        total += x->nbytes;
        n_params += x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3];
    }
    printf("\ntensors by type:\n  %-6s %8s  %s\n", "type", "count", "size");
    for (t = 0; t < DS_TYPE_COUNT_; t++) {
        if (!count[t]) continue;
        printf("  %-6s %8lld  ", ds_type_name((ds_type)t), (long long)count[t]);
        print_size(bytes[t]);
        putchar('\n');
    }
    printf("  %-6s %8lld  ", "total", (long long)ds_gguf_n_tensors(g));
    print_size(total);
    printf(", %lld parameters\n", (long long)n_params);
}

int ds_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int i, list = 0;
    int64_t k;
    ds_gguf *g = NULL;
    ds_str arch;
    ds_status s;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(info_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(path = cli_value(argc, argv, &i, "info"))) return 2;
        } else if (!strcmp(argv[i], "--tensors")) {
            list = 1;
        } else {
            return cli_usage_error("info", "unknown option '%s'", argv[i]);
        }
    }
    if (!path) return cli_usage_error("info", "no file given (-m FILE)");
    if ((s = ds_gguf_open(path, &g))) return cli_fail("info", path, s);
    printf("file          %s\n", path);
    printf("format        GGUF v%u, ", ds_gguf_version(g));
    print_size(ds_gguf_file_size(g));
    printf(", alignment %u, data at %llu\n", ds_gguf_alignment(g), (unsigned long long)ds_gguf_data_offset(g));
    if (ds_gguf_get_str(g, "general.architecture", &arch) == DS_OK) printf("architecture  %.*s\n", (int)arch.len, arch.ptr);
    else printf("architecture  (none: no general.architecture string)\n");
    printf("\nmetadata (%lld keys):\n", (long long)ds_gguf_n_kv(g));
    for (k = 0; k < ds_gguf_n_kv(g); k++) print_kv(g, ds_gguf_kv_at(g, k));
    if (list) print_tensor_list(g);
    print_type_table(g);
    ds_gguf_free(g);
    return 0;
}
