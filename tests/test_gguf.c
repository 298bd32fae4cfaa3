/* GGUF: reading the real model, round trips through our writer, and a hostile file for every
   class of violation, each of which must give its DS_ERR_* and a message. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"
#include <stdint.h>

/* ---- a byte builder for hand-made files (independent of the library's writer) -------------- */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;
static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = (uint8_t *)realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void patch_u32(uint8_t *p, size_t at, uint32_t v) {
    int i;
    for (i = 0; i < 4; i++) p[at + i] = (uint8_t)(v >> (8 * i));
}
static void patch_u64(uint8_t *p, size_t at, uint64_t v) {
    patch_u32(p, at, (uint32_t)v);
    patch_u32(p, at + 4, (uint32_t)(v >> 32));
}

/* Where the fields that the hostile tests corrupt lie in the small file. */
typedef struct small_file {
    buf b;
    size_t version, n_tensors, n_kv, key0_len, arch_len, align_type, align_value, arr_elem_type, arr_len, strs_len;
    size_t key_two, bool_value, f32_type, a_ndims, a_ne0, a_ne1, a_type, b_name, b_ne0, b_type, b_offset, data;
} small_file;

/* GGUF v3: 6 KVs, tensors a (F32 4x2 at 0) and b (Q8_0 32 at 32), alignment 32 */
static void make_small(small_file *f) {
    buf *b = &f->b;
    int i;
    memset(f, 0, sizeof *f);
    put(b, "GGUF", 4);
    f->version = b->n; put_u32(b, 3);
    f->n_tensors = b->n; put_u64(b, 2);
    f->n_kv = b->n; put_u64(b, 6);
    f->key0_len = b->n; put_str(b, "general.architecture"); put_u32(b, DS_GGUF_STRING);
    f->arch_len = b->n; put_str(b, "llama");
    put_str(b, "general.alignment");
    f->align_type = b->n; put_u32(b, DS_GGUF_U32);
    f->align_value = b->n; put_u32(b, 32);
    put_str(b, "test.array.i32"); put_u32(b, DS_GGUF_ARRAY);
    f->arr_elem_type = b->n; put_u32(b, DS_GGUF_I32);
    f->arr_len = b->n; put_u64(b, 3);
    for (i = 1; i <= 3; i++) put_u32(b, (uint32_t)-i);
    put_str(b, "test.key_one"); put_u32(b, DS_GGUF_BOOL);
    f->bool_value = b->n; put(b, "\1", 1);
    f->key_two = b->n + 8; put_str(b, "test.key_two");
    f->f32_type = b->n; put_u32(b, DS_GGUF_F32); put_u32(b, 0x3fc00000u); /* 1.5f */
    put_str(b, "test.strings"); put_u32(b, DS_GGUF_ARRAY); put_u32(b, DS_GGUF_STRING);
    f->strs_len = b->n; put_u64(b, 2); put_str(b, "ab"); put_str(b, "c");
    put_str(b, "a");
    f->a_ndims = b->n; put_u32(b, 2);
    f->a_ne0 = b->n; put_u64(b, 4);
    f->a_ne1 = b->n; put_u64(b, 2);
    f->a_type = b->n; put_u32(b, DS_TYPE_F32); put_u64(b, 0);
    f->b_name = b->n + 8; put_str(b, "b"); put_u32(b, 1);
    f->b_ne0 = b->n; put_u64(b, 32);
    f->b_type = b->n; put_u32(b, DS_TYPE_Q8_0);
    f->b_offset = b->n; put_u64(b, 32);
    while (b->n % 32) put(b, "\0", 1);
    f->data = b->n;
    for (i = 0; i < 32 + 34; i++) {
        uint8_t x = (uint8_t)(i * 7 + 1);
        put(b, &x, 1);
    }
}

static ds_status open_bytes(const uint8_t *p, size_t n) {
    ds_gguf *g = NULL;
    ds_status s;
    ds_clear_error();
    s = ds_gguf_open_memory(p, n, &g);
    if (s == DS_OK) {
        ds_gguf_free(g);
        return s;
    }
    return g ? DS_ERR_STATE : s;   /* a failed open must leave *out NULL */
}

static void test_small_file_reads(ds_test_ctx *t) {
    small_file f;
    ds_gguf *g = NULL;
    const ds_gguf_tensor *ta, *tb;
    ds_str s, strs[2];
    uint32_t u;
    int32_t i32;
    int64_t i64;
    uint64_t n;
    float x;
    int bl;
    ds_gguf_type et;
    const void *arr;
    make_small(&f);
    DS_REQUIRE(t, ds_gguf_open_memory(f.b.p, f.b.n, &g) == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_version(g) == 3 && ds_gguf_n_kv(g) == 6 && ds_gguf_n_tensors(g) == 2, "counts");
    DS_CHECK(t, ds_gguf_data_offset(g) == f.data && ds_gguf_alignment(g) == 32, "data offset %llu", (unsigned long long)ds_gguf_data_offset(g));
    DS_CHECK(t, ds_gguf_get_str(g, "general.architecture", &s) == DS_OK && s.len == 5 && !memcmp(s.ptr, "llama", 5), "arch");
    DS_CHECK(t, ds_gguf_get_u32(g, "general.alignment", &u) == DS_OK && u == 32, "u32");
    DS_CHECK(t, ds_gguf_get_i32(g, "general.alignment", &i32) == DS_OK && i32 == 32, "u32 read as i32");
    DS_CHECK(t, ds_gguf_get_i64(g, "general.alignment", &i64) == DS_OK && i64 == 32, "u32 read as i64");
    DS_CHECK(t, ds_gguf_get_f32(g, "test.key_two", &x) == DS_OK && x == 1.5f, "f32");
    DS_CHECK(t, ds_gguf_get_bool(g, "test.key_one", &bl) == DS_OK && bl == 1, "bool");
    DS_CHECK(t, ds_gguf_get_f32(g, "general.alignment", &x) == DS_ERR_TYPE && ds_last_error()[0], "u32 is not f32");
    DS_CHECK(t, ds_gguf_get_u32(g, "test.key_two", &u) == DS_ERR_TYPE, "f32 is not u32");
    DS_CHECK(t, ds_gguf_get_str(g, "test.key_one", &s) == DS_ERR_TYPE, "bool is not a string");
    DS_CHECK(t, ds_gguf_get_u32(g, "no.such.key", &u) == DS_ERR_NOT_FOUND && strstr(ds_last_error(), "no.such.key"), "not found");
    DS_CHECK(t, ds_gguf_find(g, "general.architecture") == ds_gguf_kv_at(g, 0) && ds_gguf_find(g, "general") == NULL, "find");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.array.i32", &et, &n, &arr) == DS_OK && et == DS_GGUF_I32 && n == 3, "arr");
    DS_CHECK(t, arr && !memcmp(arr, "\xff\xff\xff\xff\xfe\xff\xff\xff\xfd\xff\xff\xff", 12), "arr bytes");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.strings", &et, &n, NULL) == DS_OK && et == DS_GGUF_STRING && n == 2, "str arr");
    DS_CHECK(t, ds_gguf_get_arr_str(g, "test.strings", strs, 1) == DS_ERR_INVALID_ARG, "wrong count");
    DS_CHECK(t, ds_gguf_get_arr_str(g, "test.array.i32", strs, 3) == DS_ERR_TYPE, "not strings");
    DS_CHECK(t, ds_gguf_get_arr_str(g, "test.strings", strs, 2) == DS_OK && strs[0].len == 2 && !memcmp(strs[0].ptr, "ab", 2) && strs[1].len == 1 && strs[1].ptr[0] == 'c', "strings");
    ta = ds_gguf_find_tensor(g, "a");
    tb = ds_gguf_find_tensor(g, "b");
    DS_REQUIRE(t, ta && tb && ta == ds_gguf_tensor_at(g, 0) && tb == ds_gguf_tensor_at(g, 1) && !ds_gguf_find_tensor(g, "c"), "find tensors");
    DS_CHECK(t, ta->type == DS_TYPE_F32 && ta->n_dims == 2 && ta->ne[0] == 4 && ta->ne[1] == 2 && ta->ne[2] == 1 && ta->ne[3] == 1 && ta->nbytes == 32, "a shape");
    DS_CHECK(t, tb->type == DS_TYPE_Q8_0 && tb->n_dims == 1 && tb->ne[0] == 32 && tb->ne[1] == 1 && tb->nbytes == 34 && tb->offset == 32, "b shape");
    DS_CHECK(t, (const uint8_t *)ta->data == f.b.p + f.data && (const uint8_t *)tb->data == f.b.p + f.data + 32, "data pointers");
    ds_gguf_free(g);
    free(f.b.p);
}

/* Opens a copy of the small file with one u32 or u64 patched; checks status and message. */
typedef struct hostile {
    const char *what;
    size_t at;
    int width;   /* 4, 8, 1 for a single byte, 0 for none */
    uint64_t value;
    ds_status want;
} hostile;

static void check_hostile(ds_test_ctx *t, const small_file *f, hostile h) {
    uint8_t *p = (uint8_t *)malloc(f->b.n);
    ds_status s;
    memcpy(p, f->b.p, f->b.n);
    if (h.width == 4) patch_u32(p, h.at, (uint32_t)h.value);
    else if (h.width == 8) patch_u64(p, h.at, h.value);
    else if (h.width == 1) p[h.at] = (uint8_t)h.value;
    s = open_bytes(p, f->b.n);
    if (getenv("DS_TEST_VERBOSE")) printf("  %-28s %-18s %s\n", h.what, ds_status_str(s), ds_last_error());
    DS_CHECK(t, s == h.want, "%s: expected %s, got %s (%s)", h.what, ds_status_str(h.want), ds_status_str(s), ds_last_error());
    DS_CHECK(t, !strncmp(ds_last_error(), "gguf: ", 6) && strlen(ds_last_error()) > 12, "%s: message '%s'", h.what, ds_last_error());
    free(p);
}

static void test_hostile_fields(ds_test_ctx *t) {
    small_file f;
    size_t i;
    make_small(&f);
    {
        const hostile cases[] = {
            {"bad magic", 0, 1, 'X', DS_ERR_FORMAT},
            {"version 1", f.version, 4, 1, DS_ERR_UNSUPPORTED},
            {"version 99", f.version, 4, 99, DS_ERR_UNSUPPORTED},
            {"version 0", f.version, 4, 0, DS_ERR_UNSUPPORTED},
            {"big-endian version", f.version, 4, 0x03000000u, DS_ERR_UNSUPPORTED},
            {"huge kv count", f.n_kv, 8, UINT64_C(1) << 40, DS_ERR_BOUNDS},
            {"kv count 2^64-1", f.n_kv, 8, UINT64_MAX, DS_ERR_BOUNDS},
            {"huge tensor count", f.n_tensors, 8, UINT64_C(1) << 40, DS_ERR_BOUNDS},
            {"tensor count 2^64-1", f.n_tensors, 8, UINT64_MAX, DS_ERR_BOUNDS},
            {"key length past end", f.key0_len, 8, 100000, DS_ERR_BOUNDS},
            {"key length 2^63", f.key0_len, 8, UINT64_C(1) << 63, DS_ERR_BOUNDS},
            {"string length past end", f.arch_len, 8, 1000000, DS_ERR_BOUNDS},
            {"string length 2^64-1", f.arch_len, 8, UINT64_MAX, DS_ERR_BOUNDS},
            {"array length overflow", f.arr_len, 8, (UINT64_C(1) << 62) + 1, DS_ERR_OVERFLOW},
            {"array length past end", f.arr_len, 8, 1000, DS_ERR_BOUNDS},
            {"string array length huge", f.strs_len, 8, UINT64_C(1) << 61, DS_ERR_BOUNDS},
            {"unknown value type", f.f32_type, 4, 13, DS_ERR_TYPE},
            {"unknown array element type", f.arr_elem_type, 4, 99, DS_ERR_TYPE},
            {"nested array", f.arr_elem_type, 4, DS_GGUF_ARRAY, DS_ERR_UNSUPPORTED},
            {"bool value 2", f.bool_value, 1, 2, DS_ERR_FORMAT},
            {"alignment 0", f.align_value, 4, 0, DS_ERR_FORMAT},
            {"alignment 3", f.align_value, 4, 3, DS_ERR_FORMAT},
            {"alignment as i32", f.align_type, 4, DS_GGUF_I32, DS_ERR_TYPE},
            {"duplicate tensor name", f.b_name, 1, 'a', DS_ERR_FORMAT},
            {"n_dims 5", f.a_ndims, 4, 5, DS_ERR_FORMAT},
            {"ne negative", f.a_ne0, 8, (uint64_t)-4, DS_ERR_FORMAT},
            {"ne product overflow", f.a_ne1, 8, UINT64_C(1) << 62, DS_ERR_OVERFLOW},
            {"byte size overflow", f.a_ne1, 8, UINT64_C(1) << 60, DS_ERR_OVERFLOW},
            {"unknown tensor type id", f.a_type, 4, 77, DS_ERR_TYPE},
            {"retired tensor type id 4", f.a_type, 4, 4, DS_ERR_TYPE},
            {"tensor type id 2^32-1", f.a_type, 4, UINT32_MAX, DS_ERR_TYPE},
            {"row not whole blocks", f.b_ne0, 8, 16, DS_ERR_FORMAT},
            {"misaligned offset", f.b_offset, 8, 33, DS_ERR_FORMAT},
            {"tensor past end of file", f.b_offset, 8, 64, DS_ERR_BOUNDS},
            {"tensor offset 2^64-32", f.b_offset, 8, (uint64_t)0 - 32, DS_ERR_BOUNDS},
            {"tensor bigger than file", f.b_ne0, 8, 32 * 4, DS_ERR_BOUNDS},
            {"overlapping tensors", f.b_offset, 8, 0, DS_ERR_FORMAT},
        };
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) check_hostile(t, &f, cases[i]);
    }
    free(f.b.p);
}

static void test_duplicate_key(ds_test_ctx *t) {
    small_file f;
    hostile h = {"duplicate key", 0, 0, 0, DS_ERR_FORMAT};
    make_small(&f);
    /* "test.key_two" becomes "test.key_one" */
    memcpy(f.b.p + f.key_two + 9, "one", 3);
    check_hostile(t, &f, h);
    DS_CHECK(t, strstr(ds_last_error(), "test.key_one") != NULL, "message names the key: %s", ds_last_error());
    free(f.b.p);
}

static void test_messages_name_things(ds_test_ctx *t) {
    small_file f;
    hostile past = {"past end", 0, 8, 64, DS_ERR_BOUNDS};
    make_small(&f);
    past.at = f.b_offset;
    check_hostile(t, &f, past);
    {
        char want[128];
        snprintf(want, sizeof want, "gguf: tensor 'b': data ends at %zu, file has %zu bytes", f.data + 64 + 34, f.b.n);
        DS_CHECK(t, strcmp(ds_last_error(), want) == 0, "got '%s', want '%s'", ds_last_error(), want);
    }
    free(f.b.p);
}

static void test_truncated_at_every_length(ds_test_ctx *t) {
    small_file f;
    size_t n;
    make_small(&f);
    DS_REQUIRE(t, open_bytes(f.b.p, f.b.n) == DS_OK, "whole file opens: %s", ds_last_error());
    for (n = 0; n < f.b.n && !t->failed; n++) {
        uint8_t *p = (uint8_t *)malloc(n ? n : 1);   /* exact size: ASan sees any over-read */
        ds_status s;
        memcpy(p, f.b.p, n);
        s = open_bytes(p, n);
        DS_CHECK(t, s == DS_ERR_FORMAT || s == DS_ERR_BOUNDS, "cut at %zu: got %s (%s)", n, ds_status_str(s), ds_last_error());
        DS_CHECK(t, !strncmp(ds_last_error(), "gguf: ", 6), "cut at %zu: message '%s'", n, ds_last_error());
        free(p);
    }
    free(f.b.p);
}

static void test_version2_and_no_tensors(ds_test_ctx *t) {
    buf b = {NULL, 0, 0};
    ds_gguf *g = NULL;
    put(&b, "GGUF", 4);
    put_u32(&b, 2);
    put_u64(&b, 0);
    put_u64(&b, 1);
    put_str(&b, "k");
    put_u32(&b, DS_GGUF_I8);
    put(&b, "\xfe", 1);
    DS_REQUIRE(t, ds_gguf_open_memory(b.p, b.n, &g) == DS_OK, "open: %s", ds_last_error());
    {
        int32_t v;
        uint32_t u;
        uint64_t u64;
        DS_CHECK(t, ds_gguf_version(g) == 2 && ds_gguf_n_tensors(g) == 0, "v2");
        DS_CHECK(t, ds_gguf_get_i32(g, "k", &v) == DS_OK && v == -2, "i8 -2 as i32");
        DS_CHECK(t, ds_gguf_get_u32(g, "k", &u) == DS_ERR_TYPE && ds_gguf_get_u64(g, "k", &u64) == DS_ERR_TYPE, "negative does not fit unsigned");
    }
    ds_gguf_free(g);
    DS_CHECK(t, ds_gguf_open_memory(NULL, 0, &g) == DS_ERR_FORMAT && g == NULL, "empty input");
    free(b.p);
}

/* The values below were read from the same file independently with the `gguf` Python package
   (GGUFReader, gguf 0.19): 272 tensors (210 Q4_1, 61 F32, 1 Q8_0), 33 KVs, data section at
   1785664, token_embd.weight Q8_0 [576, 49152] 30081024 bytes starting 32 19 d6 0d,
   output_norm.weight F32 [576] at 98360128, tokens[0] "<|endoftext|>", merges[0] "Ġ t". */
static void test_real_model(ds_test_ctx *t) {
    const char *path = ds_test_env_file("DS_TEST_MODEL");
    ds_gguf *g = NULL;
    ds_str arch, *toks;
    uint32_t u;
    float eps, base;
    uint64_t n;
    ds_gguf_type et;
    const void *tt;
    int64_t i, counts[DS_TYPE_COUNT_] = {0};
    const ds_gguf_tensor *emb, *on;
    if (!path) DS_SKIP(t, "DS_TEST_MODEL not set or missing (make model)");
    DS_REQUIRE(t, ds_gguf_open(path, &g) == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_version(g) == 3 && ds_gguf_n_tensors(g) == 272 && ds_gguf_n_kv(g) == 33, "counts %lld %lld", (long long)ds_gguf_n_tensors(g), (long long)ds_gguf_n_kv(g));
    DS_CHECK(t, ds_gguf_data_offset(g) == 1785664, "data offset %llu", (unsigned long long)ds_gguf_data_offset(g));
    DS_CHECK(t, ds_gguf_get_str(g, "general.architecture", &arch) == DS_OK && arch.len == 5 && !memcmp(arch.ptr, "llama", 5), "arch");
    DS_CHECK(t, ds_gguf_get_u32(g, "llama.block_count", &u) == DS_OK && u == 30, "block_count");
    DS_CHECK(t, ds_gguf_get_u32(g, "llama.embedding_length", &u) == DS_OK && u == 576, "embd");
    DS_CHECK(t, ds_gguf_get_u32(g, "llama.attention.head_count_kv", &u) == DS_OK && u == 3, "head_count_kv");
    DS_CHECK(t, ds_gguf_get_u32(g, "llama.vocab_size", &u) == DS_OK && u == 49152, "vocab");
    DS_CHECK(t, ds_gguf_get_f32(g, "llama.rope.freq_base", &base) == DS_OK && base == 100000.0f, "rope base");
    DS_CHECK(t, ds_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) == DS_OK && eps == 1e-5f, "eps");
    DS_CHECK(t, ds_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &tt) == DS_OK && et == DS_GGUF_I32 && n == 49152, "token types");
    DS_REQUIRE(t, ds_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, NULL) == DS_OK && et == DS_GGUF_STRING && n == 49152, "tokens");
    toks = (ds_str *)malloc(n * sizeof *toks);
    DS_CHECK(t, ds_gguf_get_arr_str(g, "tokenizer.ggml.tokens", toks, n) == DS_OK, "token strings");
    DS_CHECK(t, toks[0].len == 13 && !memcmp(toks[0].ptr, "<|endoftext|>", 13), "token 0");
    DS_CHECK(t, toks[n - 1].len == 7 && !memcmp(toks[n - 1].ptr, "ectable", 7), "last token");
    free(toks);
    toks = (ds_str *)malloc(48900 * sizeof *toks);
    DS_CHECK(t, ds_gguf_get_arr_str(g, "tokenizer.ggml.merges", toks, 48900) == DS_OK && toks[0].len == 4 && !memcmp(toks[0].ptr, "\xc4\xa0 t", 4), "merges");
    free(toks);
    for (i = 0; i < ds_gguf_n_tensors(g); i++) counts[ds_gguf_tensor_at(g, i)->type]++;
    DS_CHECK(t, counts[DS_TYPE_Q4_1] == 210 && counts[DS_TYPE_F32] == 61 && counts[DS_TYPE_Q8_0] == 1, "type counts");
    emb = ds_gguf_find_tensor(g, "token_embd.weight");
    on = ds_gguf_find_tensor(g, "output_norm.weight");
    DS_REQUIRE(t, emb && on, "tensors found");
    DS_CHECK(t, emb->type == DS_TYPE_Q8_0 && emb->n_dims == 2 && emb->ne[0] == 576 && emb->ne[1] == 49152 && emb->nbytes == 30081024, "embd shape");
    DS_CHECK(t, !memcmp(emb->data, "\x32\x19\xd6\x0d", 4), "embd bytes");
    DS_CHECK(t, on->type == DS_TYPE_F32 && on->ne[0] == 576 && ds_gguf_data_offset(g) + on->offset == 98360128, "output_norm");
    DS_CHECK(t, ds_gguf_find_tensor(g, "blk.0.ffn_norm.weight") == ds_gguf_tensor_at(g, 5), "hash lookup");
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {   /* every name finds its own tensor */
        const ds_gguf_tensor *x = ds_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        DS_CHECK(t, ds_gguf_find_tensor(g, name) == x, "find_tensor(%s)", name);
    }
    for (i = 0; i < ds_gguf_n_kv(g); i++) {
        const ds_gguf_kv *kv = ds_gguf_kv_at(g, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        DS_CHECK(t, ds_gguf_find(g, key) == kv, "find(%s)", key);
    }
    ds_gguf_free(g);
}

/* ---- writer ---------------------------------------------------------------------------- */
/* Byte j of sample tensor i; tests/check_gguf.py computes the same pattern. */
static uint8_t pattern(int i, uint64_t j) { return (uint8_t)(i * 37 + j * 13 + 5); }

typedef struct sample_tensor {
    const char *name;
    ds_type type;
    int n_dims;
    int64_t ne[4];
} sample_tensor;
static const sample_tensor sample_tensors[] = {
    {"f32.2d", DS_TYPE_F32, 2, {3, 5, 1, 1}},       {"f16.1d", DS_TYPE_F16, 1, {7, 1, 1, 1}},
    {"bf16.3d", DS_TYPE_BF16, 3, {2, 3, 4, 1}},     {"q4_0", DS_TYPE_Q4_0, 2, {64, 2, 1, 1}},
    {"q4_1", DS_TYPE_Q4_1, 2, {32, 3, 1, 1}},       {"q8_0", DS_TYPE_Q8_0, 3, {32, 1, 2, 1}},
    {"q4_k", DS_TYPE_Q4_K, 2, {256, 2, 1, 1}},      {"q6_k", DS_TYPE_Q6_K, 1, {256, 1, 1, 1}},
    {"f32.4d", DS_TYPE_F32, 4, {2, 2, 2, 2}},
};
#define N_SAMPLE (int)(sizeof sample_tensors / sizeof sample_tensors[0])

/* The sample file tests/check_gguf.py reads with the gguf package: every value type, every
   array element type, tensors of 8 types in 1..4 dims, alignment 64. Keep the two in step. */
static ds_status write_sample(const char *path, uint8_t **bufs) {
    ds_gguf_writer *w = NULL;
    ds_status s;
    int i;
    static const char *const strs[] = {"a", "", "h\xc3\xa9llo"};
    const uint8_t au8[] = {1, 2, 255}, abool[] = {1, 0, 1};
    const int8_t ai8[] = {-1, 0, 1};
    const uint16_t au16[] = {0, 65535};
    const int16_t ai16[] = {-32768, 32767};
    const uint32_t au32[] = {0, 4294967295u};
    const int32_t ai32[] = {-5, 7};
    const float af32[] = {0.5f, -2.25f};
    const uint64_t au64[] = {UINT64_MAX};
    const int64_t ai64[] = {INT64_MIN};
    const double af64[] = {1.5, -1e-300};
    uint8_t u8 = 200, i8 = (uint8_t)-100, u16[2] = {0x60, 0xea} /* 60000 */, i16[2] = {0xd0, 0x8a} /* -30000 */;
    if ((s = ds_gguf_writer_create(&w))) return s;
    s = ds_gguf_writer_set_str(w, "general.architecture", "llama");
    if (!s) s = ds_gguf_writer_set_u32(w, "test.replaced", 1);
    if (!s) s = ds_gguf_writer_set_str(w, "general.name", "sample \xc3\xbc");
    if (!s) s = ds_gguf_writer_set_u32(w, "general.alignment", 64);
    if (!s) s = ds_gguf_writer_set_scalar(w, "test.u8", DS_GGUF_U8, &u8);
    if (!s) s = ds_gguf_writer_set_scalar(w, "test.i8", DS_GGUF_I8, &i8);
    if (!s) s = ds_gguf_writer_set_scalar(w, "test.u16", DS_GGUF_U16, u16);
    if (!s) s = ds_gguf_writer_set_scalar(w, "test.i16", DS_GGUF_I16, i16);
    if (!s) s = ds_gguf_writer_set_u32(w, "test.u32", 4000000000u);
    if (!s) s = ds_gguf_writer_set_i32(w, "test.i32", -2000000000);
    if (!s) s = ds_gguf_writer_set_f32(w, "test.f32", 0.15625f);
    if (!s) s = ds_gguf_writer_set_bool(w, "test.bool", 7);
    if (!s) s = ds_gguf_writer_set_u64(w, "test.u64", (UINT64_C(1) << 63) + 5);
    if (!s) s = ds_gguf_writer_set_i64(w, "test.i64", -(INT64_C(1) << 62) - 3);
    if (!s) s = ds_gguf_writer_set_f64(w, "test.f64", -1e300);
    if (!s) s = ds_gguf_writer_set_str(w, "test.replaced", "second");
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.u8", DS_GGUF_U8, au8, 3);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.i8", DS_GGUF_I8, ai8, 3);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.u16", DS_GGUF_U16, au16, 2);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.i16", DS_GGUF_I16, ai16, 2);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.u32", DS_GGUF_U32, au32, 2);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.i32", DS_GGUF_I32, ai32, 2);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.f32", DS_GGUF_F32, af32, 2);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.bool", DS_GGUF_BOOL, abool, 3);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.u64", DS_GGUF_U64, au64, 1);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.i64", DS_GGUF_I64, ai64, 1);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.f64", DS_GGUF_F64, af64, 2);
    if (!s) s = ds_gguf_writer_set_arr_str(w, "test.arr.str", strs, 3);
    if (!s) s = ds_gguf_writer_set_arr(w, "test.arr.empty", DS_GGUF_I32, NULL, 0);
    for (i = 0; i < N_SAMPLE && !s; i++) {
        const sample_tensor *st = &sample_tensors[i];
        uint64_t nb, j;
        ds_type_nbytes(st->type, st->ne[0] * st->ne[1] * st->ne[2] * st->ne[3], &nb);
        bufs[i] = (uint8_t *)malloc(nb);
        for (j = 0; j < nb; j++) bufs[i][j] = pattern(i, j);
        s = ds_gguf_writer_add_tensor(w, st->name, st->type, st->n_dims, st->ne, bufs[i]);
    }
    if (!s) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

static void free_bufs(uint8_t **bufs) {
    int i;
    for (i = 0; i < N_SAMPLE; i++) free(bufs[i]);
}

static void temp_path(char *out, size_t n, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/ds_test_gguf_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void test_writer_round_trip(ds_test_ctx *t) {
    char path[512], tmp[520];
    uint8_t *bufs[N_SAMPLE] = {0};
    ds_gguf *g = NULL;
    ds_str s, strs[3];
    uint32_t u32;
    int32_t i32;
    uint64_t u64, n;
    int64_t i64;
    float f;
    double d;
    int b, i, j;
    ds_gguf_type et;
    const void *data;
    temp_path(path, sizeof path, "rt.gguf");
    DS_REQUIRE(t, write_sample(path, bufs) == DS_OK, "write: %s", ds_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    DS_CHECK(t, !file_exists(tmp), "no temporary left behind");
    DS_REQUIRE(t, ds_gguf_open(path, &g) == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_version(g) == 3 && ds_gguf_alignment(g) == 64 && ds_gguf_data_offset(g) % 64 == 0, "header");
    DS_CHECK(t, ds_gguf_n_kv(g) == 28, "n_kv %lld (the replaced key counts once)", (long long)ds_gguf_n_kv(g));
    DS_CHECK(t, ds_gguf_get_str(g, "test.replaced", &s) == DS_OK && s.len == 6 && !memcmp(s.ptr, "second", 6), "replaced value");
    DS_CHECK(t, ds_gguf_kv_at(g, 1) == ds_gguf_find(g, "test.replaced"), "replacing keeps the first position");
    DS_CHECK(t, ds_gguf_get_str(g, "general.name", &s) == DS_OK && s.len == 9 && !memcmp(s.ptr, "sample \xc3\xbc", 9), "utf-8 string");
    DS_CHECK(t, ds_gguf_get_u32(g, "test.u8", &u32) == DS_OK && u32 == 200, "u8");
    DS_CHECK(t, ds_gguf_get_i32(g, "test.i8", &i32) == DS_OK && i32 == -100, "i8");
    DS_CHECK(t, ds_gguf_get_u32(g, "test.u16", &u32) == DS_OK && u32 == 60000, "u16");
    DS_CHECK(t, ds_gguf_get_i32(g, "test.i16", &i32) == DS_OK && i32 == -30000, "i16");
    DS_CHECK(t, ds_gguf_get_u32(g, "test.u32", &u32) == DS_OK && u32 == 4000000000u, "u32");
    DS_CHECK(t, ds_gguf_get_i32(g, "test.u32", &i32) == DS_ERR_TYPE, "u32 4e9 does not fit i32");
    DS_CHECK(t, ds_gguf_get_i32(g, "test.i32", &i32) == DS_OK && i32 == -2000000000, "i32");
    DS_CHECK(t, ds_gguf_get_f32(g, "test.f32", &f) == DS_OK && f == 0.15625f, "f32");
    DS_CHECK(t, ds_gguf_get_bool(g, "test.bool", &b) == DS_OK && b == 1, "bool");
    DS_CHECK(t, ds_gguf_get_u64(g, "test.u64", &u64) == DS_OK && u64 == (UINT64_C(1) << 63) + 5, "u64");
    DS_CHECK(t, ds_gguf_get_i64(g, "test.u64", &i64) == DS_ERR_TYPE && ds_gguf_get_u32(g, "test.u64", &u32) == DS_ERR_TYPE, "u64 too big for i64/u32");
    DS_CHECK(t, ds_gguf_get_i64(g, "test.i64", &i64) == DS_OK && i64 == -(INT64_C(1) << 62) - 3, "i64");
    DS_CHECK(t, ds_gguf_get_f64(g, "test.f64", &d) == DS_OK && d == -1e300, "f64");
    DS_CHECK(t, ds_gguf_get_f32(g, "test.f64", &f) == DS_OK && isinf(f) && f < 0, "f64 -1e300 as f32");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.arr.u16", &et, &n, &data) == DS_OK && et == DS_GGUF_U16 && n == 2 && !memcmp(data, "\0\0\xff\xff", 4), "u16 array");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.arr.i64", &et, &n, &data) == DS_OK && et == DS_GGUF_I64 && n == 1 && !memcmp(data, "\0\0\0\0\0\0\0\x80", 8), "i64 array");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.arr.bool", &et, &n, &data) == DS_OK && et == DS_GGUF_BOOL && n == 3 && !memcmp(data, "\1\0\1", 3), "bool array");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.arr.f64", &et, &n, &data) == DS_OK && et == DS_GGUF_F64 && n == 2, "f64 array");
    DS_CHECK(t, ds_gguf_get_arr(g, "test.arr.empty", &et, &n, &data) == DS_OK && et == DS_GGUF_I32 && n == 0, "empty array");
    DS_CHECK(t, ds_gguf_get_arr_str(g, "test.arr.str", strs, 3) == DS_OK && strs[0].len == 1 && strs[1].len == 0 && strs[2].len == 6 && !memcmp(strs[2].ptr, "h\xc3\xa9llo", 6), "string array");
    DS_CHECK(t, ds_gguf_n_tensors(g) == N_SAMPLE, "n_tensors");
    for (i = 0; i < N_SAMPLE && !t->failed; i++) {
        const sample_tensor *st = &sample_tensors[i];
        const ds_gguf_tensor *x = ds_gguf_tensor_at(g, i);
        DS_REQUIRE(t, x && x == ds_gguf_find_tensor(g, st->name), "tensor %s", st->name);
        DS_CHECK(t, x->type == st->type && x->n_dims == st->n_dims && x->offset % 64 == 0, "tensor %s type/dims/offset", st->name);
        for (j = 0; j < 4; j++) DS_CHECK(t, x->ne[j] == st->ne[j], "tensor %s ne[%d]", st->name, j);
        DS_CHECK(t, memcmp(x->data, bufs[i], (size_t)x->nbytes) == 0, "tensor %s bytes", st->name);
    }
    ds_gguf_free(g);
    free_bufs(bufs);
    remove(path);
}

static uint8_t *slurp(const char *path, size_t *n) {
    ds_mapped_file m;
    uint8_t *p;
    if (ds_map_file(path, &m) != DS_OK) return NULL;
    p = (uint8_t *)malloc(m.size + 1);
    memcpy(p, m.data, m.size);
    *n = m.size;
    ds_unmap_file(&m);
    return p;
}

/* copy_kv plus the same tensors reproduces the file byte for byte */
static void test_writer_copy_kv(ds_test_ctx *t) {
    char a[512], b[512];
    uint8_t *bufs[N_SAMPLE] = {0}, *pa, *pb;
    size_t na = 0, nb = 0;
    ds_gguf *g = NULL;
    ds_gguf_writer *w = NULL;
    int64_t i;
    temp_path(a, sizeof a, "copy_a.gguf");
    temp_path(b, sizeof b, "copy_b.gguf");
    DS_REQUIRE(t, write_sample(a, bufs) == DS_OK, "write: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_open(a, &g) == DS_OK, "open: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK && ds_gguf_writer_copy_kv(w, g) == DS_OK, "copy: %s", ds_last_error());
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *x = ds_gguf_tensor_at(g, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        DS_CHECK(t, ds_gguf_writer_add_tensor(w, name, x->type, x->n_dims, x->ne, x->data) == DS_OK, "add %s: %s", name, ds_last_error());
    }
    DS_CHECK(t, ds_gguf_writer_write(w, b) == DS_OK, "write copy: %s", ds_last_error());
    ds_gguf_writer_free(w);
    ds_gguf_free(g);
    pa = slurp(a, &na);
    pb = slurp(b, &nb);
    DS_CHECK(t, pa && pb && na == nb && !memcmp(pa, pb, na), "copy differs (%zu vs %zu bytes)", na, nb);
    free(pa);
    free(pb);
    free_bufs(bufs);
    remove(a);
    remove(b);
}

/* every KV of the real model survives copy_kv with identical bytes */
static void test_writer_copies_model_kvs(ds_test_ctx *t) {
    const char *model = ds_test_env_file("DS_TEST_MODEL");
    char path[512];
    ds_gguf *g = NULL, *h = NULL;
    ds_gguf_writer *w = NULL;
    int64_t i;
    if (!model) DS_SKIP(t, "DS_TEST_MODEL not set or missing (make model)");
    temp_path(path, sizeof path, "kvs.gguf");
    DS_REQUIRE(t, ds_gguf_open(model, &g) == DS_OK, "open: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK && ds_gguf_writer_copy_kv(w, g) == DS_OK, "copy: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_writer_write(w, path) == DS_OK, "write: %s", ds_last_error());
    DS_REQUIRE(t, ds_gguf_open(path, &h) == DS_OK, "reopen: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_n_kv(h) == ds_gguf_n_kv(g) && ds_gguf_n_tensors(h) == 0, "counts");
    for (i = 0; i < ds_gguf_n_kv(g) && !t->failed; i++) {
        const ds_gguf_kv *x = ds_gguf_kv_at(g, i), *y = ds_gguf_kv_at(h, i);
        size_t lx, ly;
        const uint8_t *ex = ds__gguf_kv_encoded(x, &lx), *ey = ds__gguf_kv_encoded(y, &ly);
        DS_CHECK(t, x->key.len == y->key.len && !memcmp(x->key.ptr, y->key.ptr, x->key.len) && x->type == y->type, "key %lld", (long long)i);
        DS_CHECK(t, lx == ly && !memcmp(ex, ey, lx), "value of key %.*s", (int)x->key.len, x->key.ptr);
    }
    ds_gguf_writer_free(w);
    ds_gguf_free(g);
    ds_gguf_free(h);
    remove(path);
}

static void test_writer_rejects(ds_test_ctx *t) {
    ds_gguf_writer *w = NULL;
    float x[64] = {0};
    int64_t ne[4] = {4, 2, 1, 1}, neg[2] = {4, -1}, half[1] = {16}, big[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    char path[512];
    const char *bad_strs[] = {"a", NULL};
    DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK, "create");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 2, ne, x) == DS_OK, "add");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 2, ne, x) == DS_ERR_INVALID_ARG, "duplicate name");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 0, ne, x) == DS_ERR_INVALID_ARG, "n_dims 0");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 5, ne, x) == DS_ERR_INVALID_ARG, "n_dims 5");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 2, neg, x) == DS_ERR_INVALID_ARG, "negative ne");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 2, big, x) == DS_ERR_OVERFLOW, "size overflow");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", (ds_type)4, 2, ne, x) == DS_ERR_TYPE, "unknown type");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_Q8_0, 1, half, x) == DS_ERR_INVALID_ARG, "not whole blocks");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 2, ne, NULL) == DS_ERR_INVALID_ARG, "NULL data");
    DS_CHECK(t, ds_gguf_writer_add_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123", DS_TYPE_F32, 2, ne, x) == DS_ERR_INVALID_ARG, "64-byte name");
    DS_CHECK(t, ds_gguf_writer_set_arr(w, "k", DS_GGUF_STRING, x, 1) == DS_ERR_INVALID_ARG, "string elem in set_arr");
    DS_CHECK(t, ds_gguf_writer_set_arr_str(w, "k", bad_strs, 2) == DS_ERR_INVALID_ARG, "NULL string");
    DS_CHECK(t, ds_gguf_writer_set_scalar(w, "k", DS_GGUF_ARRAY, x) == DS_ERR_INVALID_ARG, "array as scalar");
    DS_CHECK(t, ds_gguf_writer_set_str(w, NULL, "v") == DS_ERR_INVALID_ARG, "NULL key");
    temp_path(path, sizeof path, "bad_align.gguf");
    DS_CHECK(t, ds_gguf_writer_set_u32(w, "general.alignment", 48) == DS_OK, "set");
    DS_CHECK(t, ds_gguf_writer_write(w, path) == DS_ERR_INVALID_ARG && !file_exists(path), "alignment 48 refused");
    DS_CHECK(t, ds_gguf_writer_set_i32(w, "general.alignment", 64) == DS_OK, "set");
    DS_CHECK(t, ds_gguf_writer_write(w, path) == DS_ERR_INVALID_ARG, "alignment as i32 refused");
    DS_CHECK(t, ds_gguf_writer_set_u32(w, "general.alignment", 64) == DS_OK, "set");
    DS_CHECK(t, ds_gguf_writer_write(w, "/nonexistent/dir/x.gguf") == DS_ERR_IO && strstr(ds_last_error(), "/nonexistent/dir/x.gguf.tmp"), "unwritable path: %s", ds_last_error());
    ds_gguf_writer_free(w);
}

/* writing over an existing file replaces it whole */
static void test_writer_replaces_atomically(ds_test_ctx *t) {
    char path[512];
    FILE *f;
    ds_gguf_writer *w = NULL;
    ds_gguf *g = NULL;
    uint32_t v = 0;
    temp_path(path, sizeof path, "replace.gguf");
    f = fopen(path, "wb");
    DS_REQUIRE(t, f != NULL, "create %s", path);
    fputs("an old file that is longer than the new one will be, to catch a missing truncate ......................................................", f);
    fclose(f);
    DS_REQUIRE(t, ds_gguf_writer_create(&w) == DS_OK, "create");
    DS_CHECK(t, ds_gguf_writer_set_u32(w, "k", 5) == DS_OK && ds_gguf_writer_write(w, path) == DS_OK, "write: %s", ds_last_error());
    ds_gguf_writer_free(w);
    DS_REQUIRE(t, ds_gguf_open(path, &g) == DS_OK, "open: %s", ds_last_error());
    DS_CHECK(t, ds_gguf_get_u32(g, "k", &v) == DS_OK && v == 5 && ds_gguf_file_size(g) == 64, "content (41 bytes padded to 32), size %llu", (unsigned long long)ds_gguf_file_size(g));
    ds_gguf_free(g);
    remove(path);
}

/* ---- modes for tests/check_gguf.py ---- */
static void dump_json_str(const char *p, size_t n) {
    size_t i;
    putchar('"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void dump_scalar(ds_gguf_type type, const uint8_t *p) {
    uint64_t u = 0;
    int k, size = type == DS_GGUF_U8 || type == DS_GGUF_I8 || type == DS_GGUF_BOOL ? 1 : type == DS_GGUF_U16 || type == DS_GGUF_I16 ? 2 : type == DS_GGUF_U64 || type == DS_GGUF_I64 || type == DS_GGUF_F64 ? 8 : 4;
    for (k = 0; k < size; k++) u |= (uint64_t)p[k] << (8 * k);
    switch (type) {
    case DS_GGUF_I8: printf("%d", (int)(int8_t)u); break;
    case DS_GGUF_I16: printf("%d", (int)(int16_t)u); break;
    case DS_GGUF_I32: printf("%d", (int)(int32_t)u); break;
    case DS_GGUF_I64: printf("%lld", (long long)(int64_t)u); break;
    case DS_GGUF_BOOL: printf(u ? "true" : "false"); break;
    case DS_GGUF_F32: {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        printf("%.9g", f);
        break;
    }
    case DS_GGUF_F64: {
        double d;
        memcpy(&d, &u, 8);
        printf("%.17g", d);
        break;
    }
    default: printf("%llu", (unsigned long long)u); break;
    }
}

/* One JSON object per line: every KV with its value, then every tensor with a checksum of its
   bytes (sum of byte * (index % 251 + 1) mod 2^64), for comparison with the gguf package. */
static int dump(const char *path) {
    ds_gguf *g = NULL;
    int64_t i;
    uint64_t j;
    if (ds_gguf_open(path, &g) != DS_OK) {
        fprintf(stderr, "%s\n", ds_last_error());
        return 1;
    }
    printf("{\"version\": %u, \"alignment\": %u, \"data_offset\": %llu}\n", ds_gguf_version(g), ds_gguf_alignment(g), (unsigned long long)ds_gguf_data_offset(g));
    for (i = 0; i < ds_gguf_n_kv(g); i++) {
        const ds_gguf_kv *kv = ds_gguf_kv_at(g, i);
        printf("{\"key\": ");
        dump_json_str(kv->key.ptr, kv->key.len);
        printf(", \"type\": %d, ", (int)kv->type);
        if (kv->type == DS_GGUF_ARRAY) {
            const uint8_t *p = kv->data;
            size_t es = ds__gguf_scalar_size(kv->arr_type);
            printf("\"elem\": %d, \"value\": [", (int)kv->arr_type);
            for (j = 0; j < kv->arr_len; j++) {
                if (j) putchar(',');
                if (kv->arr_type == DS_GGUF_STRING) {
                    ds_str s = ds__gguf_str_at(p);
                    dump_json_str(s.ptr, s.len);
                    p += 8 + s.len;
                } else {
                    dump_scalar(kv->arr_type, p);
                    p += es;
                }
            }
            printf("]}\n");
        } else if (kv->type == DS_GGUF_STRING) {
            ds_str s = ds__gguf_str_at(kv->data);
            printf("\"value\": ");
            dump_json_str(s.ptr, s.len);
            printf("}\n");
        } else {
            printf("\"value\": ");
            dump_scalar(kv->type, kv->data);
            printf("}\n");
        }
    }
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *x = ds_gguf_tensor_at(g, i);
        const uint8_t *p = (const uint8_t *)x->data;
        uint64_t sum = 0;
        for (j = 0; j < x->nbytes; j++) sum += p[j] * (j % 251 + 1);
        printf("{\"tensor\": ");
        dump_json_str(x->name.ptr, x->name.len);
        printf(", \"type\": %d, \"ne\": [%lld, %lld, %lld, %lld], \"n_dims\": %d, \"offset\": %llu, \"nbytes\": %llu, \"checksum\": %llu}\n", (int)x->type, (long long)x->ne[0], (long long)x->ne[1],
               (long long)x->ne[2], (long long)x->ne[3], x->n_dims, (unsigned long long)x->offset, (unsigned long long)x->nbytes, (unsigned long long)sum);
    }
    ds_gguf_free(g);
    return 0;
}

static const ds_test_case cases[] = {
    DS_T(test_small_file_reads), DS_T(test_hostile_fields), DS_T(test_duplicate_key), DS_T(test_messages_name_things),
    DS_T(test_truncated_at_every_length), DS_T(test_version2_and_no_tensors), DS_T(test_real_model), DS_T(test_writer_round_trip),
    DS_T(test_writer_copy_kv), DS_T(test_writer_copies_model_kvs), DS_T(test_writer_rejects), DS_T(test_writer_replaces_atomically),
};

/* test_gguf                      run the tests (those whose name contains ARG, if given)
   test_gguf --write-sample PATH  write the sample file for tests/check_gguf.py
   test_gguf --write-small PATH   write the small hand-made file (a fuzzing seed)
   test_gguf --dump PATH          print what the reader sees, as JSON lines */
int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-sample")) {
        uint8_t *bufs[N_SAMPLE] = {0};
        ds_status s = write_sample(argv[2], bufs);
        free_bufs(bufs);
        if (s) fprintf(stderr, "%s\n", ds_last_error());
        return s != DS_OK;
    }
    if (argc == 3 && !strcmp(argv[1], "--write-small")) {
        small_file f;
        FILE *out = fopen(argv[2], "wb");
        make_small(&f);
        if (!out || fwrite(f.b.p, 1, f.b.n, out) != f.b.n) return 1;
        free(f.b.p);
        return fclose(out) != 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--dump")) return dump(argv[2]);
    return ds_test_run(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);
}
