/* Kernel benchmark (not a test): the machine's read bandwidth, decode-shaped (T=1) matmuls over
   a whole SmolLM2-135M-shaped set of weights (GB/s of weights streamed), prefill-shaped (T=512)
   matmuls (GFLOP/s), and the element-wise kernels, for each SIMD level against scalar.
   Build: cc -O2 -I. tests/bench_kernels.c -lm -lpthread
   Run:   ./a.out [threads]       Each figure is the best of several repeats. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include <stdio.h>
#include <time.h>

/* with 1 thread the clock is the thread's CPU time: less disturbed by other processes on a
   shared machine; with more threads it is wall time */
static int use_cpu_clock;
/* the CPU backend's kernels under the feature mask in use */
static ds__ops ops;
static void use_mask(unsigned mask) {
    ds_cpu_set_mask(mask);
    ds__ops_init(&ops, DS_BACKEND_CPU);
}
static double now(void) {
    struct timespec ts;
    if (!use_cpu_clock) return ds_time();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float rndf(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0 * 2.0 - 1.0);
}

typedef struct { const uint64_t *buf; size_t n; uint64_t sum[64]; } bw_ctx;
/* 8 independent xor chains of 32-byte loads where AVX2 exists (8-byte loads otherwise): far
   more load throughput than memory delivers, so the loop measures the memory */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static uint64_t xor_range(const uint64_t *p, size_t n) {
    __m256i s[8];
    uint64_t out[4];
    size_t j;
    int k;
    for (k = 0; k < 8; k++) s[k] = _mm256_setzero_si256();
    for (j = 0; j + 32 <= n; j += 32)
        for (k = 0; k < 8; k++) s[k] = _mm256_xor_si256(s[k], _mm256_loadu_si256((const __m256i *)(p + j + 4 * k)));
    for (k = 1; k < 8; k++) s[0] = _mm256_xor_si256(s[0], s[k]);
    _mm256_storeu_si256((__m256i *)out, s[0]);
    return out[0] ^ out[1] ^ out[2] ^ out[3];
}
#else
static uint64_t xor_range(const uint64_t *p, size_t n) {
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t j;
    int k;
    for (j = 0; j + 8 <= n; j += 8)
        for (k = 0; k < 8; k++) s[k] ^= p[j + (size_t)k];
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}
#endif
static void bw_task(void *c, int i, int n) {
    bw_ctx *b = (bw_ctx *)c;
    size_t lo = b->n * (size_t)i / (size_t)n, hi = b->n * (size_t)(i + 1) / (size_t)n;
    b->sum[i] = xor_range(b->buf + lo, hi - lo);
}
static double read_bandwidth(ds_pool *pool, size_t bytes) {
    bw_ctx c;
    uint64_t *buf = (uint64_t *)ds_alloc(bytes);
    double best = 1e30;
    int r, nt = ds_pool_size(pool);
    size_t i;
    for (i = 0; i < bytes / 8; i++) buf[i] = i;
    c.buf = buf; c.n = bytes / 8;
    for (r = 0; r < 5; r++) {
        double t0 = now();
        ds_pool_run(pool, bw_task, &c, nt);
        best = DS__MIN(best, now() - t0);
    }
    ds_free(buf);
    return (double)bytes / best / 1e9;
}

typedef struct { int N, K; ds_type t; void *w; } mat;
enum { N_LAYERS = 30, D = 576, F = 1536, KV = 192, VOCAB = 49152 };

static void make_mat(mat *m, ds_type t, int N, int K) {
    float *row = (float *)malloc((size_t)K * 4);
    size_t rb = ds__row_bytes(t, K);
    int n, k;
    m->N = N; m->K = K; m->t = t;
    m->w = ds_alloc(rb * (size_t)N);
    for (n = 0; n < N; n++) {
        for (k = 0; k < K; k++) row[k] = rndf() * 0.1f;
        ds__quantize_row(t, row, (uint8_t *)m->w + rb * (size_t)n, K);
    }
    free(row);
}

static const struct { const char *name; unsigned mask; } levels[] = {
    {"scalar", 0},
    {"avx2", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C},
    {"avxvnni", DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C | DS_CPU_AVXVNNI},
    {"best", ~0u},
};

/* one decode step's matmuls: 7 per layer + the tied output; returns seconds (best of reps) */
static double decode_step(ds_pool *pool, mat *ms, int n_mats, float *x, float *y, void *ws, int reps) {
    double best = 1e30;
    int r, i;
    for (r = 0; r < reps; r++) {
        double t0 = now();
        for (i = 0; i < n_mats; i++) ds__matmul(&ops, pool, y, x, 1, ms[i].w, ms[i].t, ms[i].N, ms[i].K, ws);
        best = DS__MIN(best, now() - t0);
    }
    return best;
}

static double prefill_layer(ds_pool *pool, mat *ms, int T, float *x, float *y, void *ws, int reps, double *flops) {
    double best = 1e30;
    int r, i;
    *flops = 0;
    for (i = 0; i < 7; i++) *flops += 2.0 * T * ms[i].N * ms[i].K;
    for (r = 0; r < reps; r++) {
        double t0 = now();
        for (i = 0; i < 7; i++) ds__matmul(&ops, pool, y, x, T, ms[i].w, ms[i].t, ms[i].N, ms[i].K, ws);
        best = DS__MIN(best, now() - t0);
    }
    return best;
}

static double time_elementwise(int which, int reps) {
    static float a[4096], b[4096], c[4096];
    double best = 1e30;
    int r, i, j;
    for (i = 0; i < 4096; i++) { a[i] = rndf(); b[i] = rndf(); c[i] = rndf(); }
    for (r = 0; r < reps; r++) {
        double t0 = now();
        for (j = 0; j < 1000; j++) {
            switch (which) {
            case 0: ops.rmsnorm(c, a, b, D, 1e-5f); break;
            case 1: memcpy(c, a, 4 * 1024); ops.softmax(c, 1024); break;
            case 2: ops.swiglu(c, a, b, F); break;
            case 3: ds__rope(&ops, c, 9, 64, 64, j, 10000.0f, 0); break;
            case 4: ds__rope(&ops, c, 9, 64, 64, j, 10000.0f, 1); break;
            case 5: a[0] += ops.dot(a, b, D) * 1e-30f; break;
            case 6: ops.axpy(c, 0.5f, a, D); break;
            }
        }
        best = DS__MIN(best, now() - t0);
    }
    return best / 1000 * 1e9;
}

/* every weight type on one 1536 x 1536 matrix (cache-resident: the kernels' own speed):
   T=1 in GB/s of weights, T=64 in GFLOP/s, scalar against the best level */
static void per_type(ds_pool *pool) {
    static const ds_type types[] = {DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q8_0, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_F16, DS_TYPE_BF16, DS_TYPE_F32};
    enum { N = 1536, K = 1536, TP = 64 };
    float *x = (float *)ds_alloc((size_t)TP * K * 4), *y = (float *)ds_alloc((size_t)TP * N * 4);
    int i, j;
    for (i = 0; i < TP * K; i++) x[i] = rndf();
    printf("\nper weight type, %dx%d matrix (cache-resident), T=1 GB/s and T=%d GFLOP/s:\n", N, K, TP);
    for (i = 0; i < 8; i++) {
        mat mt;
        void *ws = ds_alloc(ds__matmul_wsize(types[i], TP, K) + 64);
        double res[2][2], bytes;
        int l, T;
        make_mat(&mt, types[i], N, K);
        bytes = (double)ds__row_bytes(types[i], K) * N;
        for (l = 0; l < 2; l++) {
            use_mask(l ? ~0u : 0u);
            for (T = 0; T < 2; T++) {
                double best = 1e30;
                int r, reps = T ? (l ? 3 : 1) : (l ? 50 : 5);
                for (r = 0; r < 3; r++) {
                    double t0 = now();
                    for (j = 0; j < reps; j++) ds__matmul(&ops, pool, y, x, T ? TP : 1, mt.w, mt.t, N, K, ws);
                    best = DS__MIN(best, (now() - t0) / reps);
                }
                res[l][T] = T ? 2.0 * N * K * TP / best / 1e9 : bytes / best / 1e9;
            }
        }
        printf("  %-5s T=1 scalar %6.2f GB/s  best %6.2f GB/s  %5.1fx    T=%d scalar %6.1f  best %6.1f GFLOP/s  %5.1fx\n", ds_type_name(types[i]), res[0][0], res[1][0],
               res[1][0] / res[0][0], TP, res[0][1], res[1][1], res[1][1] / res[0][1]);
        ds_free(mt.w);
        ds_free(ws);
    }
    ds_free(x);
    ds_free(y);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, l, i, n_mats = 0;
    const char *only = argc > 2 ? argv[2] : "bdpte"; /* bandwidth, decode, prefill, types, element-wise */
    ds_pool_config pc;
    ds_pool *pool;
    mat *ms = (mat *)calloc(N_LAYERS * 7 + 1, sizeof(mat));
    float *x = (float *)ds_alloc(512 * F * 4), *y = (float *)ds_alloc((size_t)512 * VOCAB * 4);
    void *ws = ds_alloc(ds__matmul_wsize(DS_TYPE_Q4_1, 512, F) + ds__matmul_wsize(DS_TYPE_Q8_0, 512, F));
    double bytes = 0, scalar_dec = 0, scalar_pf = 0;
    static const char *ew[] = {"rmsnorm 576", "softmax 1024", "swiglu 1536", "rope 9x64 adjacent", "rope 9x64 neox", "dot_f32 576", "axpy_f32 576"};
    use_mask(~0u);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = threads;
    ds_pool_create(&pc, &pool);
    printf("cpu features %#x, %d threads; figures are the best of several runs (the machine is shared)\n", ds_cpu_features(), threads);
    use_cpu_clock = threads == 1;
    if (strchr(only, 'b')) printf("read bandwidth: 1 GiB buffer %.1f GB/s, 96 MiB buffer %.1f GB/s, 8 MiB buffer %.1f GB/s\n", read_bandwidth(pool, (size_t)1 << 30), read_bandwidth(pool, (size_t)96 << 20),
           read_bandwidth(pool, (size_t)8 << 20));
    for (l = 0; l < N_LAYERS; l++) {
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, D, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, KV, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, KV, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, D, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, F, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, F, D);
        make_mat(&ms[n_mats++], DS_TYPE_Q4_1, D, F);
    }
    make_mat(&ms[n_mats++], DS_TYPE_Q8_0, VOCAB, D);
    for (i = 0; i < n_mats; i++) bytes += (double)ds__row_bytes(ms[i].t, ms[i].K) * ms[i].N;
    for (i = 0; i < 512 * F; i++) x[i] = rndf();
    printf("\ndecode (T=1), SmolLM2-135M Q4_1 shapes, %.1f MB of weights per token:\n", bytes / 1e6);
    for (l = 0; l < 4 && strchr(only, 'd'); l++) {
        double s;
        use_mask(levels[l].mask);
        if (l > 0 && l < 3 && (ds_cpu_features() & levels[l].mask) != levels[l].mask) continue;
        s = decode_step(pool, ms, n_mats, x, y, ws, l == 0 ? 2 : 10);
        if (l == 0) scalar_dec = s;
        printf("  %-8s %7.2f ms/token  %6.1f GB/s  %5.1fx scalar\n", levels[l].name, s * 1e3, bytes / s / 1e9, scalar_dec / s);
    }
    printf("\nprefill (T=512), one layer's 7 matmuls (Q4_1):\n");
    for (l = 0; l < 4 && strchr(only, 'p'); l++) {
        double s, fl;
        use_mask(levels[l].mask);
        if (l > 0 && l < 3 && (ds_cpu_features() & levels[l].mask) != levels[l].mask) continue;
        s = prefill_layer(pool, ms, l == 0 ? 32 : 512, x, y, ws, l == 0 ? 1 : 5, &fl);
        if (l == 0) { scalar_pf = fl / s; }
        printf("  %-8s %7.1f GFLOP/s  %5.1fx scalar%s\n", levels[l].name, fl / s / 1e9, fl / s / scalar_pf, l == 0 ? " (T=32)" : "");
    }
    if (strchr(only, 't')) per_type(pool);
    printf("\nelement-wise kernels (ns per call, single thread):\n");
    for (i = 0; i < 7 && strchr(only, 'e'); i++) {
        double s0, s1;
        use_mask(0);
        s0 = time_elementwise(i, 5);
        use_mask(~0u);
        s1 = time_elementwise(i, 5);
        printf("  %-20s scalar %8.0f  best %8.0f  %5.1fx\n", ew[i], s0, s1, s0 / s1);
    }
    ds_pool_free(pool);
    return 0;
}
