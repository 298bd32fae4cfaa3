/* run_dir.c - the run folder helpers of run_dir.h */
#define _POSIX_C_SOURCE 200809L /* strtok_r, opendir, sigaction */
#include "cli.h"
#include "run_dir.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>

/* checkpoint files are DIR/ckpt-<step>.gguf; returns the steps found, newest first */
int run_list_checkpoints(const char *dir, int *steps, int cap) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, i, j;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL && n < cap) {
        int s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%d.gg%7s", &s, tail) == 2 && !strcmp(tail, "uf") && s >= 0) steps[n++] = s;
    }
    closedir(d);
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && steps[j] > steps[j - 1]; j--) {
            int t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    return n;
}

/* a run killed while writing a checkpoint leaves DIR/ckpt-<step>.gguf.tmp: never a checkpoint */
void run_remove_partial_checkpoints(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (!strncmp(e->d_name, "ckpt-", 5) && n > 9 && !strcmp(e->d_name + n - 9, ".gguf.tmp")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
    }
    closedir(d);
}

void run_ckpt_path(char *buf, size_t n, const char *dir, int step) { snprintf(buf, n, "%s/ckpt-%08d.gguf", dir, step); }

/* keep the newest `keep` checkpoints */
void run_prune_checkpoints(const char *dir, int keep) {
    int steps[4096], n = run_list_checkpoints(dir, steps, 4096), i;
    char p[1024];
    for (i = keep; i < n; i++) {
        run_ckpt_path(p, sizeof p, dir, steps[i]);
        remove(p);
    }
}

/* log.csv keeps the rows up to `step` (a resumed run rewrites what follows) */
int run_truncate_log(const char *path, int step) {
    size_t len;
    char *text = cli_read_file(path, &len), *line, *save = NULL;
    FILE *f;
    if (!text) return 1;
    f = fopen(path, "wb");
    if (!f) {
        free(text);
        return 0;
    }
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int s;
        if (sscanf(line, "%d,", &s) == 1 && s > step) continue;
        fprintf(f, "%s\n", line);
    }
    fclose(f);
    free(text);
    return 1;
}

/* loss.svg: training loss (line) and validation loss (dots) against the step */
void run_write_svg(const char *csv, const char *svg) {
    size_t len;
    char *text = cli_read_file(csv, &len), *line, *save = NULL;
    double *st = NULL, *lo = NULL, *vl = NULL, lmin = 1e30, lmax = -1e30, smax = 1;
    int n = 0, cap = 0, i;
    FILE *f;
    if (!text) return;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int s;
        double l, v = -1;
        char vb[64] = "";
        if (sscanf(line, "%d,%lf,%63[^,]", &s, &l, vb) < 2) continue;
        if (vb[0]) v = atof(vb);
        if (!isfinite(l)) l = NAN;   /* a skipped step's inf or NaN loss is no point on the plot */
        if (!isfinite(v)) v = -1;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            st = (double *)realloc(st, cap * sizeof *st);
            lo = (double *)realloc(lo, cap * sizeof *lo);
            vl = (double *)realloc(vl, cap * sizeof *vl);
            if (!st || !lo || !vl) break;
        }
        st[n] = s;
        lo[n] = l;
        vl[n] = v;
        if (l == l) {
            lmin = l < lmin ? l : lmin;
            lmax = l > lmax ? l : lmax;
        }
        if (v > 0) {
            lmin = v < lmin ? v : lmin;
            lmax = v > lmax ? v : lmax;
        }
        smax = s > smax ? s : smax;
        n++;
    }
    free(text);
    f = fopen(svg, "wb");
    if (lmin > lmax) lmin = lmax = 0;   /* no finite loss at all */
    if (f && n > 0 && st && lo && vl) {
        double W = 800, H = 400, m = 50, span = lmax > lmin ? lmax - lmin : 1;
#define X(s) (m + (s) / smax * (W - 2 * m))
#define Y(l) (H - m - ((l) - lmin) / span * (H - 2 * m))
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
        fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<path d=\"M%g %g V%g H%g\" stroke=\"black\" fill=\"none\"/>\n", m, m, H - m, W - m);
        fprintf(f, "<text x=\"%g\" y=\"%g\">%.3f</text><text x=\"5\" y=\"%g\">%.3f</text>\n", 5.0, m, lmax, H - m, lmin);
        fprintf(f, "<text x=\"%g\" y=\"%g\">step %g</text>\n", W - m - 60, H - m + 20, smax);
        fprintf(f, "<text x=\"%g\" y=\"20\" fill=\"steelblue\">training loss</text><text x=\"%g\" y=\"20\" fill=\"darkred\">validation loss</text>\n", m, m + 120);
        fprintf(f, "<polyline fill=\"none\" stroke=\"steelblue\" points=\"");
        for (i = 0; i < n; i++)
            if (lo[i] == lo[i]) fprintf(f, "%.1f,%.1f ", X(st[i]), Y(lo[i]));
        fprintf(f, "\"/>\n");
        for (i = 0; i < n; i++)
            if (vl[i] > 0) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"darkred\"/>\n", X(st[i]), Y(vl[i]));
        fprintf(f, "</svg>\n");
#undef X
#undef Y
    }
    if (f) fclose(f);
    free(st);
    free(lo);
    free(vl);
}

void run_fmt_eta(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* can a file be created at path? (checked before the long work, the probe removed again) */
int run_can_create(const char *cmd, const char *path) {
    char probe[1100];
    FILE *f;
    snprintf(probe, sizeof probe, "%s.tmp", path);
    f = fopen(probe, "wb");
    if (!f) {
        fprintf(stderr, "deepseek %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return 0;
    }
    fclose(f);
    remove(probe);
    return 1;
}

/* ---- stopping on request ---- */
volatile sig_atomic_t run_stop_signal;
static void run_on_stop_signal(int sig) { run_stop_signal = sig; }
/* SIGINT / SIGTERM finish the step and checkpoint; a second one kills (SA_RESETHAND) */
void run_catch_stop_signals(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on ? run_on_stop_signal : SIG_DFL;
    sa.sa_flags = on ? SA_RESTART | SA_RESETHAND : 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

