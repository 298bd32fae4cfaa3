/* Kernels: the scalar references against double-precision formulas computed here, then every
   SIMD level this CPU has (forced with ds_cpu_set_mask) against the scalar reference on random
   and edge-case inputs: odd sizes and tails, denormals, infinities, large magnitudes. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)((rnd() & 0xffffff) / 16777216.0 * 2.0 - 1.0); }
static void fill(float *x, int n, float amp) {
    int i;
    for (i = 0; i < n; i++) x[i] = amp * rndf();
}
static void *xmalloc(size_t n) {
    void *p = ds_alloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* the SIMD levels to compare with scalar (those the CPU lacks are skipped) */
typedef struct level {
    const char *name;
    unsigned mask;
} level;
static const level levels[] = {
    {"avx2", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C},
    {"avx2+avxvnni", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVXVNNI},
    {"avx512", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVX512F | DS_CPU_AVX512BW | DS_CPU_AVX512VL},
    {"avx512vnni", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVX512F | DS_CPU_AVX512BW | DS_CPU_AVX512VL | DS_CPU_AVX512VNNI},
    {"avx512all", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVX512F | DS_CPU_AVX512BW | DS_CPU_AVX512VL | DS_CPU_AVX512VNNI | DS_CPU_AVX512BF16 | DS_CPU_AVXVNNI},
    {"neon", DS_CPU_NEON},
    {"neon+dotprod", DS_CPU_NEON | DS_CPU_NEON_DOTPROD},
};
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))
static unsigned all_features;
static int level_usable(int l) {
    if (!all_features) {
        ds_cpu_set_mask(~0u);
        all_features = ds_cpu_features();
    }
    return l >= 0 && (levels[l].mask & all_features) == levels[l].mask && (levels[l].mask & all_features) != 0;
}
/* the CPU backend's kernels at the level in use (-1: none, the references) */
static ds__ops ops;
static void use_level(int l) {
    ds_cpu_set_mask(l < 0 ? 0u : levels[l].mask);
    ds__ops_init(&ops, DS_BACKEND_CPU);
}
/* every level follows the references' float order exactly (llama.cpp's, deepseek.h design
   notes "numerics") for the integer-dot matmuls and the element-wise kernels */
static int bit_equal(const float *a, const float *b, int n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

/* ---- the references against double precision ------------------------------------------- */
static const ds_type mm_types[] = {DS_TYPE_F32, DS_TYPE_F16, DS_TYPE_BF16, DS_TYPE_Q8_0, DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_NL};
#define N_MM_TYPES ((int)(sizeof mm_types / sizeof mm_types[0]))

/* random weights: quantized from random floats, or random bytes with sane scales (K-quants) */
static void random_weights(ds_type t, void *w, int N, int K) {
    size_t rb = ds__row_bytes(t, K), i;
    uint8_t *p = DS__CAST(uint8_t *, w);
    float *row = DS__CAST(float *, xmalloc((size_t)K * sizeof(float)));
    int n;
    if (t == DS_TYPE_Q4_K || t == DS_TYPE_Q5_K || t == DS_TYPE_Q6_K) {
        for (i = 0; i < rb * (size_t)N; i++) p[i] = (uint8_t)rnd();
        for (i = 0; i < (size_t)N * (size_t)K / 256; i++) {
            if (t != DS_TYPE_Q6_K) { /* Q4_K and Q5_K begin with f16 d, dmin */
                uint16_t h[2];
                h[0] = ds__f32_to_f16(0.01f * (1 + rnd() % 100) / 100.0f);
                h[1] = ds__f32_to_f16(0.01f * (1 + rnd() % 100) / 100.0f);
                memcpy(p + i * ds_type_block_bytes(t), h, sizeof h);
            } else {
                DS__CAST(ds__block_q6_k *, w)[i].d = ds__f32_to_f16(0.001f * (1 + rnd() % 100) / 100.0f);
            }
        }
    } else {
        for (n = 0; n < N; n++) {
            fill(row, K, n % 7 == 3 ? 100.0f : 1.0f);
            ds__quantize_row(t, row, p + (size_t)n * rb, K);
        }
    }
    ds_free(row);
}

/* y = x @ w^T with both operands decoded to floats and summed in double: the dot product
   formulas (nibble order, offsets, mins, scales) must agree with it */
static void test_matmul_ref_formulas(ds_test_ctx *t) {
    int ti, K, N = 5, T = 3;
    use_level(-1);
    for (ti = 0; ti < N_MM_TYPES; ti++) {
        ds_type wt = mm_types[ti], at = ds__act_type(wt);
        for (K = 256; K <= 768 && !t->failed; K += 256) {
            size_t rb = ds__row_bytes(wt, K);
            void *w = xmalloc(rb * (size_t)N), *ws = xmalloc(ds__matmul_wsize(wt, T, K) + 1);
            float *x = DS__CAST(float *, xmalloc((size_t)T * K * 4)), *y = DS__CAST(float *, xmalloc((size_t)T * N * 4));
            float *wd = DS__CAST(float *, xmalloc((size_t)K * 4)), *xd = DS__CAST(float *, xmalloc((size_t)K * 4));
            void *xq = xmalloc(ds__row_bytes(at, K) + 4 * (size_t)K);
            int n, tt, k;
            random_weights(wt, w, N, K);
            fill(x, T * K, 2.0f);
            ds__matmul(&ops, NULL, y, x, T, w, wt, N, K, ws);
            for (tt = 0; tt < T; tt++) {
                ds__quantize_row(at, x + (size_t)tt * K, xq, K);
                ds__dequantize_row(at, xq, xd, K);
                for (n = 0; n < N; n++) {
                    double s = 0, sa = 0;
                    ds__dequantize_row(wt, (uint8_t *)w + (size_t)n * rb, wd, K);
                    for (k = 0; k < K; k++) {
                        s += (double)wd[k] * xd[k];
                        sa += fabs((double)wd[k] * xd[k]);
                    }
                    if (wt == DS_TYPE_Q4_1 || wt == DS_TYPE_Q5_1) { /* the min term uses Q8_1's rounded block sums */
                        const uint8_t *bw = (const uint8_t *)w + (size_t)n * rb;
                        const ds__block_q8_1 *bx = (const ds__block_q8_1 *)xq;
                        size_t bsz = ds_type_block_bytes(wt);
                        for (k = 0; k < K / 32; k++) {
                            uint16_t mh;
                            double m, sx = 0;
                            memcpy(&mh, bw + (size_t)k * bsz + 2, 2); /* m follows d in both layouts */
                            m = ds__f16_to_f32(mh);
                            int j;
                            for (j = 0; j < 32; j++) sx += xd[32 * k + j];
                            s += m * (ds__f16_to_f32(bx[k].s) - sx);
                        }
                    }
                    DS_CHECK(t, fabs(y[tt * N + n] - s) <= 1e-5 * sa + 1e-30, "%s K=%d t=%d n=%d: %.9g vs %.9g", ds_type_name(wt), K, tt, n, y[tt * N + n], s);
                }
            }
            ds_free(w); ds_free(ws); ds_free(x); ds_free(y); ds_free(wd); ds_free(xd); ds_free(xq);
        }
    }
}

static void test_elementwise_ref(ds_test_ctx *t) {
    float x[301], g[301], u[301], w[301], y[301];
    int n = 301, i;
    double ss = 0, mx = -1e30, se = 0;
    use_level(-1);
    fill(x, n, 3.0f);
    fill(w, n, 1.0f);
    for (i = 0; i < n; i++) ss += (double)x[i] * x[i];
    ops.rmsnorm(y, x, w, n, 1e-5f);
    for (i = 0; i < n; i++) DS_CHECK(t, fabs(y[i] - x[i] * w[i] / sqrt(ss / n + 1e-5)) < 1e-5, "rmsnorm %d", i);
    memcpy(y, x, sizeof x);
    ops.softmax(y, n);
    for (i = 0; i < n; i++) mx = DS__MAX(mx, x[i]);
    for (i = 0; i < n; i++) se += exp(x[i] - mx);
    for (i = 0; i < n; i++) DS_CHECK(t, fabs(y[i] - exp(x[i] - mx) / se) < 1e-6, "softmax %d", i);
    fill(g, n, 6.0f);
    fill(u, n, 2.0f);
    ops.swiglu(y, g, u, n);
    for (i = 0; i < n; i++) DS_CHECK(t, fabs(y[i] - g[i] / (1 + exp(-(double)g[i])) * u[i]) < 1e-5, "swiglu %d", i);
    DS_CHECK(t, fabs(ops.dot(x, w, n) - ss * 0 - ds__dot_f32_ref(x, w, n)) < 1e-3, "dot");
    memcpy(y, w, sizeof w);
    ops.axpy(y, 0.5f, x, n);
    for (i = 0; i < n; i++) DS_CHECK(t, y[i] == w[i] + 0.5f * x[i], "axpy %d", i);
}

/* both layouts against the rotation written out: pairs (2i, 2i+1) or (i, i + n_rot/2); a
   partial rotation, and one wider than the kernel's 128-pair chunks */
static void test_rope_ref(ds_test_ctx *t) {
    static const int cfg[2][3] = {{64, 3, 48}, {640, 2, 600}}; /* head_dim, heads, n_rot */
    static float x[1280], y[1280];
    int neox, k, h, i, pos = 37;
    use_level(-1);
    for (k = 0; k < 2; k++) {
        int hd = cfg[k][0], nh = cfg[k][1], n_rot = cfg[k][2];
        for (neox = 0; neox < 2; neox++) {
            fill(x, nh * hd, 1.0f);
            memcpy(y, x, sizeof x);
            ds__rope(&ops, y, nh, hd, n_rot, pos, 10000.0f, neox);
            for (h = 0; h < nh; h++) {
                for (i = 0; i < n_rot / 2; i++) {
                    int a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + n_rot / 2 : 2 * i + 1);
                    double th = pos * pow(10000.0, -2.0 * i / n_rot);
                    DS_CHECK(t, fabs(y[a] - (x[a] * cos(th) - x[b] * sin(th))) < 1e-5, "hd=%d neox=%d h=%d i=%d a", hd, neox, h, i);
                    DS_CHECK(t, fabs(y[b] - (x[a] * sin(th) + x[b] * cos(th))) < 1e-5, "hd=%d neox=%d h=%d i=%d b", hd, neox, h, i);
                }
                for (i = n_rot; i < hd; i++) DS_CHECK(t, y[h * hd + i] == x[h * hd + i], "unrotated dim %d changed", i);
            }
        }
    }
}

static void test_get_row(ds_test_ctx *t) {
    int ti, K = 96;
    use_level(-1);
    for (ti = 0; ti < N_MM_TYPES; ti++) {
        ds_type wt = mm_types[ti];
        int k2 = ds_type_block_elems(wt) == 256 ? 256 : K;
        size_t rb = ds__row_bytes(wt, k2);
        void *w = xmalloc(rb * 4);
        float a[256], b[256];
        random_weights(wt, w, 4, k2);
        {
            int32_t id = 2;
            ds__embed_ref(a, wt, w, &id, 1, k2);
        }
        ds__dequantize_row(wt, (uint8_t *)w + 2 * rb, b, k2);
        DS_CHECK(t, memcmp(a, b, (size_t)k2 * 4) == 0, "%s", ds_type_name(wt));
        ds_free(w);
    }
}

/* ---- every SIMD level against the scalar reference ------------------------------------- */
static int n_levels_run;

static void check_close(ds_test_ctx *t, const char *what, int l, const float *a, const float *b, const float *scale, int n, double rtol) {
    int i;
    for (i = 0; i < n && !t->failed; i++) {
        double tol = rtol * (scale ? scale[i] : fabs(b[i])) + 1e-37;
        if (isnan(b[i]) || isinf(b[i])) DS_CHECK(t, (isnan(a[i]) && isnan(b[i])) || a[i] == b[i], "%s [%s] %d: %g vs ref %g", what, levels[l].name, i, a[i], b[i]);
        else DS_CHECK(t, fabs((double)a[i] - b[i]) <= tol, "%s [%s] %d: %.9g vs ref %.9g", what, levels[l].name, i, a[i], b[i]);
    }
}

/* sum |w_k x_k| per output: the scale of the float summation-order differences */
static void abs_terms(ds_type wt, const void *w, const float *x, int T, int N, int K, float *out) {
    ds_type at = ds__act_type(wt);
    float *wd = DS__CAST(float *, xmalloc((size_t)K * 4)), *xd = DS__CAST(float *, xmalloc((size_t)K * 4));
    void *xq = xmalloc(ds__row_bytes(at, K) + 4 * (size_t)K);
    size_t rb = ds__row_bytes(wt, K);
    int tt, n, k;
    for (tt = 0; tt < T; tt++) {
        ds__quantize_row(at, x + (size_t)tt * K, xq, K);
        ds__dequantize_row(at, xq, xd, K);
        for (n = 0; n < N; n++) {
            double s = 0;
            ds__dequantize_row(wt, (const uint8_t *)w + (size_t)n * rb, wd, K);
            for (k = 0; k < K; k++) s += fabs((double)wd[k] * xd[k]);
            out[(size_t)tt * N + n] = (float)s;
        }
    }
    ds_free(wd); ds_free(xd); ds_free(xq);
}

static void check_matmul_case(ds_test_ctx *t, ds_pool *pool, ds_type wt, int T, int N, int K) {
    size_t rb = ds__row_bytes(wt, K);
    void *w = xmalloc(rb * (size_t)N), *ws = xmalloc(ds__matmul_wsize(wt, T, K));
    float *x = DS__CAST(float *, xmalloc((size_t)T * K * 4)), *y0 = DS__CAST(float *, xmalloc((size_t)T * N * 4));
    float *y1 = DS__CAST(float *, xmalloc((size_t)T * N * 4)), *sc = DS__CAST(float *, xmalloc((size_t)T * N * 4));
    int l, i;
    random_weights(wt, w, N, K);
    fill(x, T * K, 4.0f);
    for (i = 0; i < T * K; i += 97) x[i] *= 1000.0f; /* outliers stretch the activation scales */
    if (K > 7) x[K / 2] = 1e-40f;                    /* a denormal */
    use_level(-1);
    ds__matmul(&ops, NULL, y0, x, T, w, wt, N, K, ws);
    abs_terms(wt, w, x, T, N, K, sc);
    for (l = 0; l < N_LEVELS && !t->failed; l++) {
        if (!level_usable(l)) continue;
        use_level(l);
        memset(y1, 0xff, (size_t)T * N * 4);
        ds__matmul(&ops, pool, y1, x, T, w, wt, N, K, ws);
        {
            char what[96];
            snprintf(what, sizeof what, "matmul %s T=%d N=%d K=%d", ds_type_name(wt), T, N, K);
            check_close(t, what, l, y1, y0, sc, T * N, 1e-5);
            if (wt == DS_TYPE_Q4_0 || wt == DS_TYPE_Q4_1 || wt == DS_TYPE_Q5_0 || wt == DS_TYPE_Q5_1 || wt == DS_TYPE_Q8_0 ||
                wt == DS_TYPE_Q4_K || wt == DS_TYPE_Q5_K || wt == DS_TYPE_IQ4_NL)
                DS_CHECK(t, bit_equal(y1, y0, T * N), "%s [%s]: not bit-identical to the reference", what, levels[l].name);
        }
        n_levels_run++;
    }
    use_level(-1);
    ds_free(w); ds_free(ws); ds_free(x); ds_free(y0); ds_free(y1); ds_free(sc);
}

static void test_matmul_levels(ds_test_ctx *t) {
    static const int Ts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 33};
    static const int Ns[] = {1, 3, 16, 17, 31, 64, 67};
    ds_pool *pool = NULL;
    ds_pool_config pc;
    int ti, i;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = 2;
    ds_pool_create(&pc, &pool);
    for (ti = 0; ti < N_MM_TYPES && !t->failed; ti++) {
        ds_type wt = mm_types[ti];
        int kq = (int)ds_type_block_elems(wt);
        for (i = 0; i < 10 && !t->failed; i++) {
            int T = Ts[i], N = Ns[(i * 3 + ti) % 7];
            int K = kq == 1 ? 1 + (int)(rnd() % 300) : kq * (1 + (int)(rnd() % (kq == 256 ? 3 : 20)));
            check_matmul_case(t, i & 1 ? pool : NULL, wt, T, N, K);
        }
        check_matmul_case(t, pool, wt, 1, 192, kq == 256 ? 768 : 576);
        check_matmul_case(t, pool, wt, 12, 40, kq == 256 ? 512 : 1536);
    }
    ds_pool_free(pool);
    if (!t->failed && n_levels_run == 0) DS_SKIP(t, "no SIMD level on this CPU (features %#x)", ds_cpu_features());
}

/* a float array with the edge cases every element-wise kernel must carry through */
static void fill_edges(float *x, int n, float amp) {
    int i;
    fill(x, n, amp);
    for (i = 0; i < n; i += 13) x[i] = 1e-39f * (float)(i % 5); /* denormals and zeros */
    if (n > 20) x[20] = -0.0f;
}

/* a fast activation quantizer must give the reference's values: its row layout (ds__qx) holds
   the same int8s, f16-rounded scales and sums as the reference's Q8_0 / Q8_1 blocks */
static void check_quantizer(ds_test_ctx *t, int l, ds_type wt, float amp) {
    enum { K = 1024 };
    ds_type at = ds__act_type(wt);
    float x[K];
    size_t rb;
    uint8_t *q0 = DS__CAST(uint8_t *, xmalloc(ds__row_bytes(at, K))), *q1 = DS__CAST(uint8_t *, xmalloc(ds__matmul_wsize(wt, 1, K)));
    int i, b;
    fill_edges(x, K, amp);
    for (i = 0; i < K; i += 29) x[i] = (float)(i % 9) * 0.5f - 2.0f; /* exact halves of steps */
    x[300] = x[301] = -8.0f; /* a tie for the largest magnitude (Q8_K takes the first) */
    x[302] = 8.0f;
    if (at == DS_TYPE_BF16) { /* every class of float, ties included */
        static const uint32_t bits[] = {0x7f800001u, 0xffc00000u, 0x7f800000u, 0x00000001u, 0x80008000u, 0x3f808000u, 0x3f818000u, 0x7f7fffffu};
        for (i = 0; i < 8; i++) memcpy(&x[500 + i], &bits[i], 4);
    }
    ds__quantize_row(at, x, q0, K);
    use_level(l);
    rb = ds__mm_act_row(&ops, wt, K);
    ops.quantize[wt](at, x, q1, K);
    use_level(-1);
    if ((at == DS_TYPE_Q8_0 || at == DS_TYPE_Q8_1) && rb == ds__qx_row_bytes(K)) { /* the SIMD layout */
        ds__qx v = ds__qx_view(q1, K);
        for (b = 0; b < K / 32 && !t->failed; b++) {
            const int8_t *qs = at == DS_TYPE_Q8_0 ? ((ds__block_q8_0 *)q0)[b].qs : ((ds__block_q8_1 *)q0)[b].qs;
            uint16_t d = at == DS_TYPE_Q8_0 ? ((ds__block_q8_0 *)q0)[b].d : ((ds__block_q8_1 *)q0)[b].d;
            DS_CHECK(t, memcmp(qs, v.q + 32 * b, 32) == 0, "quantize %s [%s] block %d: values differ", ds_type_name(at), levels[l].name, b);
            DS_CHECK(t, v.d[b] == ds__f16_to_f32(d), "quantize %s [%s] block %d: scale", ds_type_name(at), levels[l].name, b);
            if (at == DS_TYPE_Q8_1) DS_CHECK(t, v.s[b] == ds__f16_to_f32(((ds__block_q8_1 *)q0)[b].s), "quantize Q8_1 [%s] block %d: s", levels[l].name, b);
        }
    } else {
        DS_CHECK(t, memcmp(q0, q1, ds__row_bytes(at, K)) == 0, "quantize %s [%s] differs", ds_type_name(at), levels[l].name);
    }
    ds_free(q0);
    ds_free(q1);
}

static void test_elementwise_levels(ds_test_ctx *t) {
    int l, n, i;
    float *a = DS__CAST(float *, xmalloc(4 * 1100)), *b = DS__CAST(float *, xmalloc(4 * 1100)), *w = DS__CAST(float *, xmalloc(4 * 1100));
    float *r = DS__CAST(float *, xmalloc(4 * 1100)), *s = DS__CAST(float *, xmalloc(4 * 1100)), *sc = DS__CAST(float *, xmalloc(4 * 1100));
    int any = 0;
    for (l = 0; l < N_LEVELS && !t->failed; l++) {
        if (!level_usable(l)) continue;
        any = 1;
        for (n = 1; n < 1100 && !t->failed; n += (n < 40 ? 1 : 37)) {
            float d0, d1, ad = 0;
            fill_edges(a, n, 5.0f);
            fill_edges(b, n, 3.0f);
            fill(w, n, 1.0f);
            /* dot and axpy */
            use_level(-1);
            d0 = ops.dot(a, b, n);
            for (i = 0; i < n; i++) ad += fabsf(a[i] * b[i]);
            use_level(l);
            d1 = ops.dot(a, b, n);
            check_close(t, "dot_f32", l, &d1, &d0, &ad, 1, 1e-6);
            memcpy(r, w, 4 * (size_t)n);
            memcpy(s, w, 4 * (size_t)n);
            use_level(-1);
            ops.axpy(r, 0.37f, a, n);
            use_level(l);
            ops.axpy(s, 0.37f, a, n);
            for (i = 0; i < n; i++) sc[i] = fabsf(w[i]) + fabsf(0.37f * a[i]);
            check_close(t, "axpy", l, s, r, sc, n, 1e-6);
            /* rmsnorm, y aliasing x in the fast path */
            use_level(-1);
            ops.rmsnorm(r, a, w, n, 1e-6f);
            use_level(l);
            memcpy(s, a, 4 * (size_t)n);
            ops.rmsnorm(s, s, w, n, 1e-6f);
            check_close(t, "rmsnorm", l, s, r, NULL, n, 1e-5);
            DS_CHECK(t, bit_equal(s, r, n), "rmsnorm [%s] n=%d: not bit-identical", levels[l].name, n);
            /* softmax with large logits and -inf (masked) entries */
            for (i = 0; i < n; i++) r[i] = a[i] * 20.0f;
            if (n > 3) r[1] = -INFINITY;
            memcpy(s, r, 4 * (size_t)n);
            use_level(-1);
            ops.softmax(r, n);
            use_level(l);
            ops.softmax(s, n);
            for (i = 0; i < n; i++) sc[i] = fabsf(r[i]) + 1e-7f;
            check_close(t, "softmax", l, s, r, sc, n, 2e-6);
            DS_CHECK(t, bit_equal(s, r, n), "softmax [%s] n=%d: not bit-identical", levels[l].name, n);
            /* swiglu over a wide range of gates, including +-inf-producing ones */
            for (i = 0; i < n; i++) r[i] = a[i] * (i % 3 ? 4.0f : 40.0f);
            if (n > 5) r[5] = 200.0f;
            if (n > 6) r[6] = -200.0f;
            use_level(-1);
            ops.swiglu(s, r, b, n);
            use_level(l);
            ops.swiglu(sc, r, b, n);
            {
                float *m = DS__CAST(float *, xmalloc(4 * (size_t)n));
                for (i = 0; i < n; i++) m[i] = fabsf(s[i]) + 1e-30f;
                check_close(t, "swiglu", l, sc, s, m, n, 4e-6);
                DS_CHECK(t, bit_equal(sc, s, n), "swiglu [%s] n=%d: not bit-identical", levels[l].name, n);
                ds_free(m);
            }
        }
        /* rope: both layouts, partial rotation, odd head counts */
        for (n = 0; n < 8 && !t->failed; n++) {
            int hd = n & 1 ? 64 : 128, nh = 1 + n, n_rot = n & 2 ? hd / 2 : hd, neox = n & 1, pos = (int)(rnd() % 5000);
            fill(a, nh * hd, 2.0f);
            memcpy(b, a, 4 * (size_t)(nh * hd));
            use_level(-1);
            ds__rope(&ops, a, nh, hd, n_rot, pos, 10000.0f, neox);
            use_level(l);
            ds__rope(&ops, b, nh, hd, n_rot, pos, 10000.0f, neox);
            for (i = 0; i < nh * hd; i++) sc[i] = 4.0f;
            check_close(t, "rope", l, b, a, sc, nh * hd, 1e-6);
            DS_CHECK(t, bit_equal(b, a, nh * hd), "rope [%s] hd=%d neox=%d: not bit-identical", levels[l].name, hd, neox);
        }
        for (n = 0; n < 12 && !t->failed; n++) {
            static const ds_type wts[4] = {DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q4_K, DS_TYPE_BF16};
            check_quantizer(t, l, wts[n % 4], n < 8 ? 3.0f : 1e-3f);
        }
    }
    use_level(-1);
    ds_free(a); ds_free(b); ds_free(w); ds_free(r); ds_free(s); ds_free(sc);
    if (!any && !t->failed) DS_SKIP(t, "no SIMD level on this CPU");
}

/* the attention products in llama.cpp's order (ds__attn_fold): the CPU backend's versions (AVX2,
   NEON) give the scalar references' bits, for batch (16 slots) and single-token (64 slots) orders, head sizes with and
   without whole 64-term steps, and partial key blocks */
static void test_attention_orders(ds_test_ctx *t) {
    static const int Ds[] = {16, 48, 64, 80, 128};
    static const int ns[] = {1, 7, 33, DS__ATTN_BLOCK};
    float *q = DS__CAST(float *, xmalloc(4 * 128)), *kt = DS__CAST(float *, xmalloc(4 * 128 * DS__ATTN_BLOCK));
    float *vb = DS__CAST(float *, xmalloc(4 * 128 * DS__ATTN_BLOCK)), *p = DS__CAST(float *, xmalloc(4 * DS__ATTN_BLOCK));
    float *a0 = DS__CAST(float *, xmalloc(4 * 64 * 128)), *a1 = DS__CAST(float *, xmalloc(4 * 64 * 128));
    float s0[DS__ATTN_BLOCK], s1[DS__ATTN_BLOCK], o0[128], o1[128];
    int di, ni, S, j0;
    ds__ops cpu;
    ds_cpu_set_mask(~0u);   /* every level this CPU has: the backend's best */
    ds__ops_init(&cpu, DS_BACKEND_CPU);
    if (cpu.attn_scores == ds__attn_scores_ref && cpu.attn_pv == ds__attn_pv_ref && cpu.attn_pv_sum == ds__attn_pv_sum_ref) {
        DS_SKIP(t, "no SIMD attention kernels on this CPU: the scalar references are the only ones");
    } else {
        for (di = 0; di < 5 && !t->failed; di++)
            for (ni = 0; ni < 4 && !t->failed; ni++)
                for (S = 16; S <= 64 && !t->failed; S *= 4) {
                    int D = Ds[di], n = ns[ni];
                    fill(q, D, 2.0f);
                    fill(kt, D * DS__ATTN_BLOCK, 2.0f);
                    fill(vb, D * DS__ATTN_BLOCK, 1.0f);
                    fill(p, DS__ATTN_BLOCK, 1.0f);
                    ds__attn_scores_ref(s0, q, kt, D, n, 0.125f, S);
                    cpu.attn_scores(s1, q, kt, D, n, 0.125f, S);
                    DS_CHECK(t, bit_equal(s0, s1, n), "scores D=%d n=%d S=%d: not bit-identical", D, n, S);
                    /* a whole key block, then n keys of the next (past the first round of slots), then the sums */
                    for (j0 = 0; j0 < 2 * DS__ATTN_BLOCK; j0 += DS__ATTN_BLOCK) {
                        ds__attn_pv_ref(a0, p, vb, D, j0 ? n : DS__ATTN_BLOCK, j0, S);
                        cpu.attn_pv(a1, p, vb, D, j0 ? n : DS__ATTN_BLOCK, j0, S);
                    }
                    ds__attn_pv_sum_ref(o0, a0, D, S, DS__MIN(S, DS__ATTN_BLOCK + n));
                    cpu.attn_pv_sum(o1, a1, D, S, DS__MIN(S, DS__ATTN_BLOCK + n));
                    DS_CHECK(t, bit_equal(o0, o1, D), "outputs D=%d n=%d S=%d: not bit-identical", D, n, S);
                }
    }
    ds_free(q); ds_free(kt); ds_free(vb); ds_free(p); ds_free(a0); ds_free(a1);
}

DS_TEST_MAIN(DS_T(test_matmul_ref_formulas), DS_T(test_elementwise_ref), DS_T(test_rope_ref), DS_T(test_get_row), DS_T(test_matmul_levels),
             DS_T(test_elementwise_levels), DS_T(test_attention_orders))
