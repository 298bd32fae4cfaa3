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
        ds_gguf_close(g);
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
    ds_gguf_close(g);
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
    ds_gguf_close(g);
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
    ds_gguf_close(g);
}

DS_TEST_MAIN(DS_T(test_small_file_reads), DS_T(test_hostile_fields), DS_T(test_duplicate_key), DS_T(test_messages_name_things),
             DS_T(test_truncated_at_every_length), DS_T(test_version2_and_no_tensors), DS_T(test_real_model))
