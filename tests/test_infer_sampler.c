/* test_infer_sampler.c - the sampler chain against sets computed here by brute force (a full
   sort of the vocabulary), draw frequencies against the renormalised probabilities, seeds,
   greedy limits and the repetition penalty. */
#define DEEPSEEK_IMPLEMENTATION
#include "../deepseek.h"
#include "ds_test.h"

static uint64_t rng = 42;
static double unit(void) { return ds__rand_unit(&rng); }

/* ---- brute force: the kept set as the chain's definition states it --------------------------- */
static const double *g_p;
static int by_prob(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (g_p[x] != g_p[y]) return g_p[x] > g_p[y] ? -1 : 1;
    return x - y;
}

/* marks keep[i] for the tokens temperature, top-k, top-p and min-p leave, in that order */
static int brute_kept(const float *logits, int n, const ds_sampler_config *c, char *keep) {
    double *p = (double *)malloc(sizeof(double) * (size_t)n), mx = -1e300, z = 0, zk = 0, cum = 0;
    int *ord = (int *)malloc(sizeof(int) * (size_t)n), i, k = c->top_k > 0 && c->top_k < n ? c->top_k : n, cut, kept = 0;
    for (i = 0; i < n; i++) mx = logits[i] / c->temperature > mx ? logits[i] / c->temperature : mx;
    for (i = 0; i < n; i++) z += (p[i] = exp(logits[i] / c->temperature - mx));
    for (i = 0; i < n; i++) ord[i] = i;
    g_p = p;
    qsort(ord, (size_t)n, sizeof(int), by_prob);
    for (i = 0; i < k; i++) zk += p[ord[i]];
    cut = k;
    if (c->top_p > 0 && c->top_p < 1)
        for (i = 0; i < k; i++) {
            cum += p[ord[i]];
            if (cum >= c->top_p * zk) {
                cut = i + 1;
                break;
            }
        }
    memset(keep, 0, (size_t)n);
    for (i = 0; i < cut; i++)
        if (p[ord[i]] >= c->min_p * p[ord[0]]) keep[ord[i]] = 1, kept++;
    free(p);
    free(ord);
    (void)z;
    return kept;
}

/* the sampler's own kept set for these logits */
static int sampler_kept(ds_sampler *s, const float *logits, char *keep) {
    int i;
    memcpy(s->logits, logits, sizeof(float) * (size_t)s->n_vocab);
    ds__sampler_penalize(s);
    for (i = 0; i < s->n_vocab; i++) s->logits[i] /= s->cfg.temperature;
    ds__sampler_candidates(s);
    memset(keep, 0, (size_t)s->n_vocab);
    for (i = 0; i < s->n_cand; i++) keep[s->cand[i].id] = 1;
    return s->n_cand;
}

static void random_logits(float *l, int n, double spread) {
    int i;
    for (i = 0; i < n; i++) l[i] = (float)(spread * (unit() * 2 - 1));
    if (n > 10) l[3] = l[7];   /* a tie */
}

static void test_kept_sets_match_brute_force(ds_test_ctx *t) {
    enum { V = 3000 };
    static float logits[V];
    static char want[V], got[V];
    int trial;
    for (trial = 0; trial < 300; trial++) {
        ds_sampler_config c;
        ds_sampler *s;
        int nw, ng;
        memset(&c, 0, sizeof c);
        c.temperature = (float)(0.3 + 1.5 * unit());
        c.top_k = trial % 3 == 0 ? 0 : 1 + (int)(unit() * (trial % 2 ? 50 : V + 10));
        c.top_p = trial % 5 == 1 ? 0 : (float)(0.05 + 0.95 * unit());
        c.min_p = trial % 4 == 2 ? 0 : (float)(0.2 * unit());
        random_logits(logits, V, 2 + 8 * unit());
        DS_REQUIRE(t, ds_sampler_create(&c, V, &s) == DS_OK, "create");
        nw = brute_kept(logits, V, &c, want);
        ng = sampler_kept(s, logits, got);
        DS_CHECK(t, nw == ng && memcmp(want, got, V) == 0, "trial %d (T %.2f k %d p %.3f min_p %.3f): brute force keeps %d, the sampler %d",
                 trial, c.temperature, c.top_k, c.top_p, c.min_p, nw, ng);
        ds_sampler_free(s);
        if (t->failed) return;
    }
}

/* draws land only in the kept set, with the renormalised probabilities (within 5 sigma) */
static void test_draw_frequencies(ds_test_ctx *t) {
    enum { V = 8, N = 40000 };
    float logits[V] = {2.0f, 1.5f, 1.4f, 0.0f, -1.0f, 1.0f, 3.0f, -3.0f};
    ds_sampler_config c;
    ds_sampler *s;
    char keep[V];
    double p[V], z = 0;
    int count[V] = {0}, i;
    memset(&c, 0, sizeof c);
    c.temperature = 0.9f;
    c.top_k = 6;
    c.top_p = 0.9f;
    c.seed = 5;
    DS_REQUIRE(t, ds_sampler_create(&c, V, &s) == DS_OK, "create");
    brute_kept(logits, V, &c, keep);
    for (i = 0; i < V; i++) z += (p[i] = keep[i] ? exp(logits[i] / c.temperature) : 0);
    for (i = 0; i < N; i++) {
        int32_t id = ds_sampler_sample(s, logits);
        DS_REQUIRE(t, id >= 0 && id < V && keep[id], "drew %d, outside the kept set", id);
        count[id]++;
    }
    for (i = 0; i < V; i++) {
        double e = N * p[i] / z, sd = sqrt(e * (1 - p[i] / z)) + 1;
        DS_CHECK(t, fabs(count[i] - e) <= 5 * sd, "token %d drawn %d times, expected %.0f", i, count[i], e);
    }
    ds_sampler_free(s);
}

static void test_seeds(ds_test_ctx *t) {
    enum { V = 500, N = 64 };
    static float logits[V];
    ds_sampler_config c;
    ds_sampler *a, *b, *d;
    int i, same_ab = 1, same_ad = 1;
    random_logits(logits, V, 3);
    memset(&c, 0, sizeof c);
    c.temperature = 1.0f;
    c.seed = 77;
    ds_sampler_create(&c, V, &a);
    ds_sampler_create(&c, V, &b);
    c.seed = 78;
    ds_sampler_create(&c, V, &d);
    for (i = 0; i < N; i++) {
        int32_t x = ds_sampler_sample(a, logits), y = ds_sampler_sample(b, logits), z = ds_sampler_sample(d, logits);
        same_ab &= x == y;
        same_ad &= x == z;
    }
    DS_CHECK(t, same_ab, "the same seed gives the same tokens");
    DS_CHECK(t, !same_ad, "another seed gives other tokens");
    ds_sampler_reset(a, 77);
    ds_sampler_reset(b, 77);
    DS_CHECK(t, ds_sampler_sample(a, logits) == ds_sampler_sample(b, logits), "reset reseeds");
    ds_sampler_free(a);
    ds_sampler_free(b);
    ds_sampler_free(d);
}

/* temperature 0 is the argmax; a temperature near 0 draws it too */
static void test_greedy_limits(ds_test_ctx *t) {
    enum { V = 1000 };
    static float logits[V];
    ds_sampler_config c;
    ds_sampler *g, *cold, *zero_cfg;
    int trial, i;
    memset(&c, 0, sizeof c);
    ds_sampler_create(&c, V, &zero_cfg);   /* all zero: greedy */
    c.seed = 9;
    ds_sampler_create(&c, V, &g);
    c.temperature = 1e-3f;
    ds_sampler_create(&c, V, &cold);
    for (trial = 0; trial < 50; trial++) {
        int best = 0;
        random_logits(logits, V, 5);
        logits[3] = -100;   /* no tie at the top */
        for (i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        logits[best] += 0.1f;   /* a margin: at T = 1e-3 the runner-up weighs exp(-100) */
        DS_CHECK(t, ds_sampler_sample(g, logits) == best && ds_sampler_sample(zero_cfg, logits) == best, "greedy is the argmax");
        DS_CHECK(t, ds_sampler_sample(cold, logits) == best, "temperature 1e-3 draws the argmax");
    }
    ds_sampler_free(g);
    ds_sampler_free(cold);
    ds_sampler_free(zero_cfg);
}

/* CTRL penalty: positive logits divided, negative multiplied, only for the last n accepted */
static void test_repetition_penalty(ds_test_ctx *t) {
    float logits[4] = {2.0f, 1.5f, -1.0f, -1.2f}, neg[4] = {-1.0f, -1.8f, -5.0f, -5.0f};
    ds_sampler_config c;
    ds_sampler *s;
    int i;
    memset(&c, 0, sizeof c);
    c.repeat_penalty = 2.0f;
    c.repeat_last_n = 3;
    ds_sampler_create(&c, 4, &s);
    DS_CHECK(t, ds_sampler_sample(s, logits) == 0, "no history: argmax");
    ds_sampler_accept(s, 0);
    ds_sampler_accept(s, 0);   /* counted once */
    DS_CHECK(t, ds_sampler_sample(s, logits) == 1, "2 / 2 = 1 < 1.5");
    DS_CHECK(t, ds_sampler_sample(s, neg) == 1, "-1 * 2 = -2 < -1.8");
    for (i = 0; i < 3; i++) ds_sampler_accept(s, 2);
    DS_CHECK(t, ds_sampler_sample(s, logits) == 0, "token 0 left the last 3");
    DS_CHECK(t, logits[0] == 2.0f, "the caller's logits are untouched");
    ds_sampler_free(s);
}

DS_TEST_MAIN(DS_T(test_kept_sets_match_brute_force), DS_T(test_draw_frequencies), DS_T(test_seeds), DS_T(test_greedy_limits),
             DS_T(test_repetition_penalty))
