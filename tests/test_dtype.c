/* Dtypes: f16 / bf16 conversions against independent references (an arithmetic decoding,
   nearest-candidate rounding, the F16C instructions where present), quantize/dequantize
   properties. With arguments it is the helper tests/check_dtype.py drives:
       test_dtype --quantize TYPE in.f32 out.bin      (n floats -> blocks)
       test_dtype --dequantize TYPE in.bin out.f32
       test_dtype --f16-table out.f32                  (all 65536 halves as floats)
       test_dtype --matmul TYPE N K w.bin x.f32 y.f32  (y = x @ w^T, best kernels, 2 threads) */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)((rnd() & 0xffffff) / 16777216.0 * 2.0 - 1.0); }

/* value of a half by its definition: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
    return (h & 0x8000) ? -v : v;
}

static void test_f16_to_f32_exhaustive(ds_test_ctx *t) {
    int h;
    for (h = 0; h < 65536 && !t->failed; h++) {
        float f = ds__f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e == 31) {
            uint32_t u = ds__f32_bits(f);
            DS_CHECK(t, (h & 1023) ? isnan(f) : isinf(f), "half %04x special", h);
            DS_CHECK(t, ((u >> 13) & 1023) == (uint32_t)(h & 1023) && (u >> 31) == (uint32_t)(h >> 15), "half %04x payload", h);
        } else {
            DS_CHECK(t, (double)f == f16_value((uint16_t)h) && !!signbit(f) == !!(h & 0x8000), "half %04x -> %.9g, expected %.9g", h, f, f16_value((uint16_t)h));
        }
    }
}

/* nearest representable by exhaustive search of the neighbours, ties to the even pattern */
static int better_f16(double f, uint16_t a, uint16_t b) { /* a is at least as near as b */
    double da = fabs(f - f16_value(a)), db = fabs(f - f16_value(b));
    return da < db || (da == db && !(a & 1));
}
static void check_f32_to_f16(ds_test_ctx *t, float f) {
    uint16_t h = ds__f32_to_f16(f);
    if (isnan(f)) {
        DS_CHECK(t, (h & 0x7c00) == 0x7c00 && (h & 0x3ff), "nan %08x -> %04x", ds__f32_bits(f), h);
        return;
    }
    if (fabs((double)f) >= 65520.0) {
        DS_CHECK(t, (h & 0x7fff) == 0x7c00 && (h >> 15) == (ds__f32_bits(f) >> 31), "%g -> %04x, expected inf", f, h);
        return;
    }
    DS_CHECK(t, (h >> 15) == (ds__f32_bits(f) >> 31), "%g -> %04x: sign", f, h);
    if ((h & 0x7fff) < 0x7bff) DS_CHECK(t, better_f16(f, h, (uint16_t)(h + 1)), "%.9g -> %04x: next is nearer", f, h);
    if ((h & 0x7fff) > 0) DS_CHECK(t, better_f16(f, h, (uint16_t)(h - 1)), "%.9g -> %04x: previous is nearer", f, h);
    if ((h & 0x7fff) == 0) DS_CHECK(t, fabs((double)f) <= ldexp(1, -25), "%g -> zero", f);
}

static float edge_floats[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, 2.98023224e-8f, 2.98023259e-8f,
                              5.96046448e-8f, 6.10351562e-5f, 6.09755516e-5f, 1e30f, -1e-40f, 1e-45f, 3.0517578e-5f, 0.333333333f, 1.00048828f, 1.00146484f};

static void test_f32_to_f16_rounding(ds_test_ctx *t) {
    int i;
    for (i = 0; i < (int)(sizeof edge_floats / sizeof edge_floats[0]); i++) check_f32_to_f16(t, edge_floats[i]);
    check_f32_to_f16(t, INFINITY);
    check_f32_to_f16(t, -INFINITY);
    check_f32_to_f16(t, NAN);
    for (i = 0; i < 200000 && !t->failed; i++) {
        /* exponents around the half range, with ties (low 13 bits = 0x1000) often */
        uint32_t u = (rnd() & 0x807fffffu) | ((uint32_t)(96 + rnd() % 50) << 23);
        if (i & 1) u = (u & ~0x1fffu) | 0x1000u;
        check_f32_to_f16(t, ds__bits_f32(u));
        check_f32_to_f16(t, ds__bits_f32(rnd() ^ (rnd() << 16)));
    }
}

#if defined(DS__X86_SIMD)
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) { return (uint16_t)_cvtss_sh(f, 0); }
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#endif
static void test_f16_matches_f16c(ds_test_ctx *t) {
#if defined(DS__X86_SIMD)
    int i;
    if (!(ds_cpu_features() & DS_CPU_F16C)) DS_SKIP(t, "no F16C on this CPU");
    /* F16C also sets the quiet bit of signalling NaNs; we keep the pattern */
    for (i = 0; i < 65536 && !t->failed; i++) {
        float a = ds__f16_to_f32((uint16_t)i), b = hw_f16_to_f32((uint16_t)i);
        DS_CHECK(t, ds__f32_bits(a) == ds__f32_bits(b) || (isnan(a) && isnan(b) && ((ds__f32_bits(a) ^ ds__f32_bits(b)) & ~0x00400000u) == 0), "half %04x: %08x vs F16C %08x", i, ds__f32_bits(a), ds__f32_bits(b));
    }
    for (i = 0; i < 1000000 && !t->failed; i++) {
        float f = ds__bits_f32(i < 65536 ? ((uint32_t)i << 16) | (rnd() & 0xffff) : rnd() ^ (rnd() << 16));
        DS_CHECK(t, ds__f32_to_f16(f) == hw_f32_to_f16(f), "%08x: %04x vs F16C %04x", ds__f32_bits(f), ds__f32_to_f16(f), hw_f32_to_f16(f));
    }
#else
    DS_SKIP(t, "not an x86 build with SIMD");
#endif
}

static void check_f32_to_bf16(ds_test_ctx *t, float f) {
    uint16_t b = ds__f32_to_bf16(f);
    float r = ds__bf16_to_f32(b);
    if (isnan(f)) {
        DS_CHECK(t, isnan(r), "nan %08x -> %04x", ds__f32_bits(f), b);
        return;
    }
    if (isinf(r) && !isinf(f)) { /* overflow: f must be at least halfway past the largest bf16 */
        DS_CHECK(t, fabs((double)f) >= 3.3961514e38, "%g overflowed", f);
        return;
    }
    {
        double e = fabs((double)f - r);
        double up = fabs((double)f - ds__bf16_to_f32((uint16_t)(b + 1))), dn = fabs((double)f - ds__bf16_to_f32((uint16_t)(b - 1)));
        if ((b & 0x7fff) < 0x7f7f) DS_CHECK(t, e < up || (e == up && !(b & 1)), "%.9g -> %04x: next nearer", f, b);
        if ((b & 0x7fff) > 0) DS_CHECK(t, e < dn || (e == dn && !(b & 1)), "%.9g -> %04x: previous nearer", f, b);
    }
}
static void test_bf16_rounding(ds_test_ctx *t) {
    int i;
    DS_CHECK(t, ds__bf16_to_f32(0x3f80) == 1.0f && ds__bf16_to_f32(0xc000) == -2.0f, "decode");
    DS_CHECK(t, ds__f32_to_bf16(INFINITY) == 0x7f80 && ds__f32_to_bf16(-INFINITY) == 0xff80, "inf");
    DS_CHECK(t, ds__f32_to_bf16(ds__bits_f32(0x7f800001u)) != 0x7f80, "signalling NaN must not become inf");
    for (i = 0; i < (int)(sizeof edge_floats / sizeof edge_floats[0]); i++) check_f32_to_bf16(t, edge_floats[i]);
    for (i = 0; i < 300000 && !t->failed; i++) {
        uint32_t u = rnd() ^ (rnd() << 16);
        if (i & 1) u = (u & ~0xffffu) | 0x8000u; /* exact ties */
        check_f32_to_bf16(t, ds__bits_f32(u));
    }
}

/* Each quantized type round-trips within its step size, and the block sizes match the traits. */
static void test_quant_roundtrip(ds_test_ctx *t) {
    static const ds_type types[] = {DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q8_0, DS_TYPE_Q8_1, DS_TYPE_Q8_K, DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q4_K, DS_TYPE_Q5_K};
    /* the K types also round their sub-block scales and mins to 6 bits of the block's */
    static const float tol[] = {1.0f / 8 * 1.05f, 1.0f / 15 * 1.05f, 0.5f / 127 * 1.05f, 0.5f / 127 * 1.05f, 0.5f / 127 * 1.05f, 1.0f / 16 * 1.05f, 1.0f / 31 * 1.05f,
                                1.0f / 15 * 1.5f, 1.0f / 31 * 1.5f};
    const int n_types = (int)(sizeof types / sizeof types[0]);
    float x[512], y[512];
    uint8_t q[600];
    int ti, i, k;
    for (ti = 0; ti < n_types; ti++) {
        for (k = 0; k < 20; k++) {
            float amp = k < 10 ? 1.0f : (float)ldexp(1.0, k - 15);
            float range = 0;
            for (i = 0; i < 512; i++) x[i] = amp * rndf();
            for (i = 0; i < 512; i++) range = DS__MAX(range, fabsf(x[i]));
            ds__quantize_row(types[ti], x, q, 512);
            ds__dequantize_row(types[ti], q, y, 512);
            /* max abs is per block; 2*range bounds Q4_1's (max - min); fp16 scales add ~1e-3 */
            for (i = 0; i < 512; i++) {
                int offset = types[ti] == DS_TYPE_Q4_1 || types[ti] == DS_TYPE_Q5_1 || types[ti] == DS_TYPE_Q4_K || types[ti] == DS_TYPE_Q5_K;
                float lim = tol[ti] * range * (offset ? 2.0f : 1.0f) * 1.01f + 1e-3f * fabsf(x[i]);
                DS_REQUIRE(t, fabsf(x[i] - y[i]) <= lim, "%s k=%d i=%d: %g -> %g", ds_type_name(types[ti]), k, i, x[i], y[i]);
            }
        }
    }
    memset(x, 0, sizeof x);
    for (ti = 0; ti < n_types; ti++) {
        ds__quantize_row(types[ti], x, q, 256);
        ds__dequantize_row(types[ti], q, y, 256);
        for (i = 0; i < 256; i++) DS_REQUIRE(t, y[i] == 0.0f, "%s zeros", ds_type_name(types[ti]));
    }
}

/* Q8_1's s field and Q8_K's bsums are the sums they claim */
static void test_q8_sums(ds_test_ctx *t) {
    float x[256];
    ds__block_q8_1 b1[8];
    ds__block_q8_k bk;
    int i, j;
    for (i = 0; i < 256; i++) x[i] = rndf() * 3.0f + 0.5f;
    ds__quantize_row(DS_TYPE_Q8_1, x, b1, 256);
    for (i = 0; i < 8; i++) {
        int s = 0;
        for (j = 0; j < 32; j++) s += b1[i].qs[j];
        float want = (float)s * ds__f16_to_f32(b1[i].d);
        DS_CHECK(t, fabsf(ds__f16_to_f32(b1[i].s) - want) <= 2e-3f * fabsf(want) + 1e-6f, "q8_1 sum block %d: %g vs %g", i, ds__f16_to_f32(b1[i].s), want);
    }
    ds__quantize_row(DS_TYPE_Q8_K, x, &bk, 256);
    for (i = 0; i < 16; i++) {
        int s = 0;
        for (j = 0; j < 16; j++) s += bk.qs[16 * i + j];
        DS_CHECK(t, s == bk.bsums[i], "q8_k bsum %d", i);
    }
}

/* Hand-built K-quant blocks decode to the values the layout defines. */
static void test_k_quant_layouts(ds_test_ctx *t) {
    ds__block_q4_k b4;
    ds__block_q6_k b6;
    float y[256];
    int i;
    memset(&b4, 0, sizeof b4);
    b4.d = ds__f32_to_f16(0.5f);
    b4.dmin = ds__f32_to_f16(0.25f);
    b4.scales[0] = 3;                 /* sub-block 0: scale 3 */
    b4.scales[4] = 5;                 /* sub-block 0: min 5 */
    b4.scales[8] = 0x21;              /* sub-block 4: scale low 1, min low 2 */
    b4.scales[0] |= 0x40;             /* sub-block 4 scale high bits: 1 -> scale 1 + 16 */
    b4.qs[0] = 0x97;                  /* element 0 = 7, element 32 = 9 */
    b4.qs[64] = 0x0a;                 /* element 128 (sub-block 4) = 10 */
    ds__dequantize_row(DS_TYPE_Q4_K, &b4, y, 256);
    DS_CHECK(t, y[0] == 0.5f * 3 * 7 - 0.25f * 5, "q4_k y0 %g", y[0]);
    DS_CHECK(t, y[32] == 0.0f * 9, "q4_k y32 %g (sub-block 1 has scale 0, min 0)", y[32]);
    DS_CHECK(t, y[128] == 0.5f * 17 * 10 - 0.25f * 2, "q4_k y128 %g", y[128]);
    memset(&b6, 0, sizeof b6);
    b6.d = ds__f32_to_f16(2.0f);
    for (i = 0; i < 16; i++) b6.scales[i] = (int8_t)(i - 8);
    b6.ql[0] = 0x35;  /* element 0 low 5, element 64 low 3 */
    b6.ql[32] = 0x0c; /* element 32 low 12 */
    b6.qh[0] = 0x1b;  /* element 0 high 3, element 32 high 2, element 64 high 1 */
    b6.ql[64] = 0x01; /* element 128 low 1 */
    ds__dequantize_row(DS_TYPE_Q6_K, &b6, y, 256);
    DS_CHECK(t, y[0] == 2.0f * -8 * (5 + 48 - 32), "q6_k y0 %g", y[0]);
    DS_CHECK(t, y[32] == 2.0f * -6 * (12 + 32 - 32), "q6_k y32 %g", y[32]);
    DS_CHECK(t, y[64] == 2.0f * -4 * (3 + 16 - 32), "q6_k y64 %g", y[64]);
    DS_CHECK(t, y[128] == 2.0f * 0 * (1 - 32), "q6_k y128 %g", y[128]);
    DS_CHECK(t, y[16] == 2.0f * -7 * -32, "q6_k y16 %g", y[16]);
}

static long file_size(FILE *f) {
    long n;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    return n;
}
static ds_type type_by_name(const char *s) {
    int i;
    for (i = 0; i < DS_TYPE_COUNT_; i++)
        if (ds_type_block_elems((ds_type)i) && strcmp(ds_type_name((ds_type)i), s) == 0) return (ds_type)i;
    return DS_TYPE_COUNT_;
}
static void *read_all(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    void *p;
    if (!f) return NULL;
    *n = file_size(f);
    p = malloc((size_t)*n + 64);
    if (p && fread(p, 1, (size_t)*n, f) != (size_t)*n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}
static int matmul_main(int argc, char **argv) {
    ds_type ty;
    int N, K, T;
    long nw, nx;
    void *w, *x, *ws;
    float *y;
    ds_pool *pool = NULL;
    ds__ops ops;
    ds_pool_config pc;
    FILE *out;
    if (argc != 8 || (ty = type_by_name(argv[2])) == DS_TYPE_COUNT_) return 2;
    N = atoi(argv[3]);
    K = atoi(argv[4]);
    if (!(w = read_all(argv[5], &nw)) || !(x = read_all(argv[6], &nx)) || (size_t)nw != ds__row_bytes(ty, K) * (size_t)N) return 2;
    T = (int)(nx / 4 / K);
    y = (float *)malloc((size_t)T * N * 4);
    ws = ds_alloc(ds__matmul_wsize(ty, T, K) + 64);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = 2;
    ds_pool_create(&pc, &pool);
    ds__ops_init(&ops, DS_BACKEND_CPU);
    ds__matmul(&ops, pool, y, (const float *)x, T, w, ty, N, K, ws);
    ds_pool_free(pool);
    if (!(out = fopen(argv[7], "wb")) || fwrite(y, 4, (size_t)T * N, out) != (size_t)T * N) return 2;
    free(w);
    free(x);
    free(y);
    ds_free(ws);
    return fclose(out) != 0;
}
static int tool_main(int argc, char **argv) {
    FILE *in = NULL, *out;
    void *src, *dst;
    long n_in;
    size_t n_out, n;
    ds_type ty = DS_TYPE_F32;
    int quant = strcmp(argv[1], "--quantize") == 0, table = strcmp(argv[1], "--f16-table") == 0;
    if (strcmp(argv[1], "--matmul") == 0) return matmul_main(argc, argv);
    if (table) {
        static float tab[65536];
        int i;
        if (argc != 3 || !(out = fopen(argv[2], "wb"))) return 2;
        for (i = 0; i < 65536; i++) tab[i] = ds__f16_to_f32((uint16_t)i);
        fwrite(tab, sizeof tab, 1, out);
        return fclose(out) != 0;
    }
    if (argc != 5 || (ty = type_by_name(argv[2])) == DS_TYPE_COUNT_ || !(in = fopen(argv[3], "rb"))) return 2;
    n_in = file_size(in);
    src = malloc((size_t)n_in + 1);
    if (fread(src, 1, (size_t)n_in, in) != (size_t)n_in) return 2;
    fclose(in);
    n = quant ? (size_t)n_in / 4 : (size_t)n_in / ds_type_block_bytes(ty) * ds_type_block_elems(ty);
    n_out = quant ? ds__row_bytes(ty, (int64_t)n) : n * 4;
    dst = malloc(n_out + 1);
    if (quant) ds__quantize_row(ty, (const float *)src, dst, (int64_t)n);
    else ds__dequantize_row(ty, src, (float *)dst, (int64_t)n);
    if (!(out = fopen(argv[4], "wb")) || fwrite(dst, 1, n_out, out) != n_out) return 2;
    free(src);
    free(dst);
    return fclose(out) != 0;
}

static int run_tests(int argc, char **argv) {
    static const ds_test_case cases[] = {DS_T(test_f16_to_f32_exhaustive), DS_T(test_f32_to_f16_rounding), DS_T(test_f16_matches_f16c), DS_T(test_bf16_rounding),
                                         DS_T(test_quant_roundtrip), DS_T(test_q8_sums), DS_T(test_k_quant_layouts)};
    return ds_test_run(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);
}

int main(int argc, char **argv) {
    if (argc > 1 && strncmp(argv[1], "--", 2) == 0) return tool_main(argc, argv);
    return run_tests(argc, argv);
}
