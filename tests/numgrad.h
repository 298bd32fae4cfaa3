/* numgrad.h - finite differences for the gradient tests (test_train_ops.c,
   test_deepseek_train.c): central differences of a double-precision loss, h = 1e-6. */
#include <stdlib.h>

typedef double (*loss_fn)(void *ctx);

/* out[i] = d f / d v[i] for the n doubles at v (f reads them through ctx) */
static void numgrad(double *out, double *v, size_t n, loss_fn f, void *ctx) {
    size_t i;
    for (i = 0; i < n; i++) {
        double keep = v[i], h = 1e-6, lp, lm;
        v[i] = keep + h;
        lp = f(ctx);
        v[i] = keep - h;
        lm = f(ctx);
        v[i] = keep;
        out[i] = (lp - lm) / (2 * h);
    }
}

static double *to_double(const float *x, size_t n) {
    double *d = (double *)malloc(n * sizeof(double));
    size_t i;
    for (i = 0; i < n; i++) d[i] = x[i];
    return d;
}
