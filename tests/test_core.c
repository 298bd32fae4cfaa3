/* Core: status strings, errors, allocator hook, thread pool, mapped files, cpuid. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

static void test_status_strings(ds_test_ctx *t) {
    DS_CHECK(t, strcmp(ds_status_str(DS_OK), "DS_OK") == 0, "DS_OK name");
    DS_CHECK(t, strcmp(ds_status_str(DS_ERR_FORMAT), "DS_ERR_FORMAT") == 0, "format name");
    DS_CHECK(t, strcmp(ds_status_str((ds_status)-999), "DS_ERR_UNKNOWN") == 0, "unknown name");
}

static int n_logged;
static void count_log(ds_log_level l, const char *m, void *u) {
    (void)l; (void)m; (void)u;
    n_logged++;
}
static void test_errors_and_logger(ds_test_ctx *t) {
    ds_mapped_file f;
    ds_status s;
    ds_set_logger(count_log, NULL, DS_LOG_DEBUG);
    s = ds_map_file("/nonexistent/definitely/not/here", &f);
    ds_set_logger(NULL, NULL, DS_LOG_ERROR);
    DS_CHECK(t, s == DS_ERR_IO, "expected DS_ERR_IO, got %s", ds_status_str(s));
    DS_CHECK(t, strstr(ds_last_error(), "/nonexistent/definitely/not/here") != NULL, "message names the path: '%s'", ds_last_error());
    DS_CHECK(t, n_logged == 1, "logger called %d times", n_logged);
    ds_clear_error();
    DS_CHECK(t, ds_last_error()[0] == 0, "cleared");
}

static size_t n_allocs, n_frees;
static void *counting_alloc(size_t size, size_t align, void *user) {
    void *p = NULL;
    (void)user;
    n_allocs++;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size)) return NULL;
    return p;
}
static void counting_free(void *p, void *user) {
    (void)user;
    n_frees++;
    free(p);
}
static void test_allocator_hook(ds_test_ctx *t) {
    ds_allocator a = {counting_alloc, counting_free, NULL};
    ds_pool *p = NULL;
    void *x;
    ds_set_allocator(&a);
    x = ds_alloc(100);
    DS_CHECK(t, x && ((uintptr_t)x & 63) == 0, "64-byte aligned");
    ds_free(x);
    DS_CHECK(t, ds_pool_create(NULL, &p) == DS_OK, "pool");
    ds_pool_free(p);
    ds_set_allocator(NULL);
    DS_CHECK(t, n_allocs >= 2 && n_allocs == n_frees, "allocs %zu frees %zu", n_allocs, n_frees);
    x = ds_alloc(10);
    DS_CHECK(t, x != NULL && ((uintptr_t)x & 63) == 0, "default allocator aligned");
    ds_free(x);
}

typedef struct { int *hits; long long *sum; } pool_ctx;
static void pool_task(void *ctx, int i, int n) {
    pool_ctx *c = (pool_ctx *)ctx;
    (void)n;
    c->hits[i]++;
    __atomic_fetch_add(c->sum, (long long)i, __ATOMIC_RELAXED);
}
static void test_pool_runs_each_task_once(ds_test_ctx *t) {
    int threads[] = {1, 2, 3, 8};
    int k, rep, i;
    for (k = 0; k < 4; k++) {
        ds_pool *p = NULL;
        ds_pool_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.n_threads = threads[k];
        DS_REQUIRE(t, ds_pool_create(&cfg, &p) == DS_OK, "create");
        for (rep = 0; rep < 2000 && !t->failed; rep++) {
            int n = 1 + (rep * 7) % 37;
            int hits[64];
            long long sum = 0;
            pool_ctx c;
            memset(hits, 0, sizeof hits);
            c.hits = hits;
            c.sum = &sum;
            ds_pool_run(p, pool_task, &c, n);
            for (i = 0; i < n; i++) DS_CHECK(t, hits[i] == 1, "threads %d rep %d task %d ran %d times", threads[k], rep, i, hits[i]);
            DS_CHECK(t, sum == (long long)n * (n - 1) / 2, "sum");
        }
        ds_pool_free(p);
    }
}

static void host_for(void *host, ds_task_fn task, void *ctx, int n) {
    int i;
    (*(int *)host)++;
    for (i = n - 1; i >= 0; i--) task(ctx, i, n);
}
static void test_pool_host_hook(ds_test_ctx *t) {
    int calls = 0, hits[10] = {0};
    long long sum = 0;
    pool_ctx c;
    ds_pool *p = NULL;
    ds_pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.parallel_for = host_for;
    cfg.host = &calls;
    cfg.host_threads = 4;
    DS_REQUIRE(t, ds_pool_create(&cfg, &p) == DS_OK, "create");
    c.hits = hits;
    c.sum = &sum;
    ds_pool_run(p, pool_task, &c, 10);
    DS_CHECK(t, calls == 1 && sum == 45 && ds_pool_size(p) == 4, "host hook used");
    ds_pool_free(p);
}

static void test_map_file(ds_test_ctx *t) {
    const char *path = "tests_tmp_map.bin";
    FILE *f = fopen(path, "wb");
    ds_mapped_file m;
    DS_REQUIRE(t, f != NULL, "cannot write temp file");
    fputs("hello map", f);
    fclose(f);
    DS_REQUIRE(t, ds_map_file(path, &m) == DS_OK, "map: %s", ds_last_error());
    DS_CHECK(t, m.size == 9 && memcmp(m.data, "hello map", 9) == 0, "content");
    ds_unmap_file(&m);
    remove(path);
}

static void test_cpu_features_mask(ds_test_ctx *t) {
    unsigned f = ds_cpu_features();
    ds_cpu_set_mask(0);
    DS_CHECK(t, ds_cpu_features() == 0, "mask clears features");
    ds_cpu_set_mask(~0u);
    DS_CHECK(t, ds_cpu_features() == f, "mask restores features");
#if defined(__x86_64__)
    {
        /* cross-check AVX2 against the kernel's own report in /proc/cpuinfo */
        FILE *c = fopen("/proc/cpuinfo", "r");
        char line[8192];
        int has = -1;
        if (c) {
            while (fgets(line, sizeof line, c))
                if (strncmp(line, "flags", 5) == 0) { has = strstr(line, " avx2") != NULL; break; }
            fclose(c);
        }
        if (has >= 0) DS_CHECK(t, has == !!(f & DS_CPU_AVX2), "AVX2 detection disagrees with /proc/cpuinfo");
    }
#endif
}

static void test_time_monotonic(ds_test_ctx *t) {
    double a = ds_time(), b = ds_time();
    DS_CHECK(t, b >= a && a > 0, "monotonic");
}

/* block sizes as ggml defines them (ggml.h / the GGUF specification's type table) */
static void test_type_traits(ds_test_ctx *t) {
    uint64_t n = 0;
    DS_CHECK(t, ds_type_block_bytes(DS_TYPE_Q4_1) == 20 && ds_type_block_elems(DS_TYPE_Q4_1) == 32, "Q4_1");
    DS_CHECK(t, ds_type_block_bytes(DS_TYPE_Q6_K) == 210 && ds_type_block_bytes(DS_TYPE_Q4_K) == 144, "K quants");
    DS_CHECK(t, ds_type_nbytes(DS_TYPE_Q8_0, 64, &n) == DS_OK && n == 68, "Q8_0 64 -> %llu", (unsigned long long)n);
    DS_CHECK(t, ds_type_nbytes(DS_TYPE_Q8_0, 33, &n) == DS_ERR_FORMAT, "partial block");
    DS_CHECK(t, ds_type_block_bytes(DS_TYPE_Q5_0) == 22 && ds_type_block_bytes(DS_TYPE_Q5_1) == 24 && ds_type_block_elems(DS_TYPE_Q5_1) == 32, "Q5");
    DS_CHECK(t, ds_type_nbytes((ds_type)4, 32, &n) == DS_ERR_TYPE, "unknown type"); /* ggml's removed Q4_2 */
    DS_CHECK(t, ds_type_nbytes(DS_TYPE_F32, INT64_MAX, &n) == DS_ERR_OVERFLOW, "overflow");
    DS_CHECK(t, strcmp(ds_type_name(DS_TYPE_BF16), "BF16") == 0, "name");
}

DS_TEST_MAIN(DS_T(test_type_traits), DS_T(test_status_strings), DS_T(test_errors_and_logger), DS_T(test_allocator_hook),
             DS_T(test_pool_runs_each_task_once), DS_T(test_pool_host_hook), DS_T(test_map_file),
             DS_T(test_cpu_features_mask), DS_T(test_time_monotonic))
