/* deepseek train: train a Llama-family model from scratch on token shards, with checkpoints
   that resume bit-exactly, a CSV log, an SVG loss plot and a GGUF model at the end.
   deepseek train --bench: tokens/s and the fraction of the f32 FMA peak reached in the matmuls. */
#define _POSIX_C_SOURCE 200809L /* strtok_r, opendir, mkdir, sigaction, access */
#include "cli.h"
#include "run_dir.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void train_usage(FILE *f) {
    fprintf(f, "usage: deepseek train -c CONFIG --data PREFIX [options]\n"
               "       deepseek train --bench [--KEY VALUE ...]\n"
               "Trains a model from scratch on PREFIX.train.tok (and PREFIX.val.tok when present; make them\n"
               "with 'deepseek data'). Every checkpoint_every steps a checkpoint goes to DIR; the run ends\n"
               "with DIR/model.gguf, DIR/log.csv and DIR/loss.svg. Checkpoints and the model carry a checksum\n"
               "of their data, checked when they are loaded.\n"
               "  -c, --config F     key = value lines (see ds_model_config_parse in deepseek.h)\n"
               "  --data PREFIX      token shards\n"
               "  -o, --out DIR      output folder (default train-out); a fresh run needs it empty or absent\n"
               "  --overwrite        start afresh in a DIR that holds files: deletes its checkpoints, log,\n"
               "                     plot and model\n"
               "  --resume [CKPT]    continue from CKPT, or from the newest valid checkpoint in DIR (a damaged\n"
               "                     one is skipped with a warning); fails when no checkpoint there loads\n"
               "                     (it never starts a fresh run)\n"
               "  --tokenizer F      GGUF whose tokenizer.* keys go into checkpoints and the model (default:\n"
               "                     the resumed checkpoint's, else bytes); its size must equal n_vocab and\n"
               "                     match the shards' vocabulary\n"
               "  --model PATH       where the final model goes (default DIR/model.gguf)\n"
               "  -t, --threads N    threads (0..512, 0: all CPUs)\n"
               "  --max-skips N      stop after N steps in a row with an inf/NaN loss or gradients (1..1000000;\n"
               "                     default 5, or 40 with loss scaling, which skips while it finds its scale)\n"
               "  --KEY VALUE        any config key, overriding the file, e.g. --steps 500 (1..1e9),\n"
               "                     --lr 1e-3 (1e-12..10), --batch 8 (1..65536), --seq_len 128 (1..1048576),\n"
               "                     --warmup 10 (0..1e9), --grad_clip 1 (-1: off), --precision f32|bf16|fp16|fp8\n"
               "  --quiet            no progress line\n"
               "  --bench            benchmark (default 12 layers x 768, sequence 256; f32, bf16, recompute;\n"
               "                     --steps N timed steps per setting, default 5)\n"
               "Ctrl-C (SIGINT) or SIGTERM: the run finishes its step, writes a checkpoint and exits with\n"
               "status 130 (143 for SIGTERM); '--resume' continues it. A run stopped by inf/NaN exits 1 and\n"
               "writes no model; its last good checkpoint stays.\n");
}

typedef struct train_opts {
    const char *config, *data, *out, *resume, *tokenizer, *model;
    int resume_latest, quiet, bench, overwrite;
    long max_skips;
    char overrides[8192];
} train_opts;

static int add_override(train_opts *o, size_t *used, const char *key_in, const char *v) {
    char key[64];
    size_t k;
    int w;
    snprintf(key, sizeof key, "%s", key_in);
    for (k = 0; key[k]; k++)
        if (key[k] == '-') key[k] = '_';
    w = snprintf(o->overrides + *used, sizeof o->overrides - *used, "%s = %s\n", key, v);
    if (w < 0 || (size_t)w >= sizeof o->overrides - *used) {
        cli_usage_error("train", "too many options");
        return 0;
    }
    *used += (size_t)w;
    return 1;
}

static int parse_opts(int argc, char **argv, train_opts *o) {
    int i;
    size_t used = 0;
    memset(o, 0, sizeof *o);
    o->out = "train-out";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            train_usage(stdout);
            return 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (!(o->config = cli_value(argc, argv, &i, "train"))) return 2;
        } else if (!strcmp(a, "--data")) {
            if (!(o->data = cli_value(argc, argv, &i, "train"))) return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!(o->out = cli_value(argc, argv, &i, "train"))) return 2;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(o->tokenizer = cli_value(argc, argv, &i, "train"))) return 2;
        } else if (!strcmp(a, "--model")) {
            if (!(o->model = cli_value(argc, argv, &i, "train"))) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            const char *v = cli_value(argc, argv, &i, "train");
            long n;
            if (!v) return 2;
            if (!cli_int(v, 0, 512, &n)) return cli_usage_error("train", "%s needs a number of threads in 0..512", a);
            if (!add_override(o, &used, "threads", v)) return 2;
        } else if (!strcmp(a, "--max-skips") || !strcmp(a, "--max_skips")) {
            const char *v = cli_value(argc, argv, &i, "train");
            if (!v) return 2;
            if (!cli_int(v, 1, 1000000, &o->max_skips)) return cli_usage_error("train", "--max-skips needs a number in 1..1000000");
        } else if (!strcmp(a, "--resume")) {
            if (i + 1 < argc && argv[i + 1][0] != '-') o->resume = argv[++i];
            else o->resume_latest = 1;
        } else if (!strcmp(a, "--overwrite")) {
            o->overwrite = 1;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "--bench")) {
            o->bench = 1;
        } else if (!strncmp(a, "--", 2) && a[2]) {
            const char *v = cli_value(argc, argv, &i, "train");
            if (!v) return 2;
            if (!add_override(o, &used, a + 2, v)) return 2;
        } else {
            cli_usage_error("train", "unknown argument %s", a);
            return 2;
        }
    }
    if (o->overwrite && (o->resume || o->resume_latest)) return cli_usage_error("train", "--overwrite and --resume contradict each other");
    return 0;
}

/* ---- the run folder ---- */
/* the files a run writes into DIR (besides its checkpoints) */
static const char *const run_files[] = {"log.csv", "loss.svg", "model.gguf", "model.gguf.tmp"};

static int is_checkpoint_name(const char *name) {
    int s;
    char tail[12];
    return sscanf(name, "ckpt-%d.gg%11s", &s, tail) == 2 && (!strcmp(tail, "uf") || !strcmp(tail, "uf.tmp"));
}

/* what DIR holds: 0 absent or empty; else the count of entries, with the first named in `first` */
static int folder_entries(const char *dir, char *first, size_t n) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    first[0] = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!count++) snprintf(first, n, "%s", e->d_name);
    }
    closedir(d);
    return count;
}

/* --overwrite: deletes what an earlier run left (checkpoints, log, plot, model), nothing else */
static void clear_run(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    size_t i;
    if (!d) return;
    while ((e = readdir(d)) != NULL)
        if (is_checkpoint_name(e->d_name)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
    closedir(d);
    for (i = 0; i < sizeof run_files / sizeof run_files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, run_files[i]);
        remove(p);
    }
}

/* ---- tokenizer and shards ---- */
/* The tokenizer for the run: --tokenizer, else the resumed checkpoint's (when it has one).
   Checks it against the model's n_vocab and the shards' recorded vocabulary; with none, the
   shards must be byte shards. 0 on a refusal (reported). */
static int pick_tokenizer(const train_opts *o, const char *resume_from, const ds_model_config *mc, const ds_train_data *data, ds_gguf **tok) {
    int shard_vocab = 0, n = 0;
    uint64_t shard_fp = 0, fp = 0;
    ds_status st;
    ds_train_data_vocab(data, &shard_vocab, &shard_fp);
    if (o->tokenizer) {
        if ((st = ds_gguf_open(o->tokenizer, tok)) != DS_OK) return !cli_fail("train", "--tokenizer", st);
        if (ds_gguf_vocab_fingerprint(*tok, &fp, &n) != DS_OK) {
            fprintf(stderr, "deepseek train: %s has no tokenizer (no tokenizer.ggml.tokens)\n", o->tokenizer);
            return 0;
        }
        if (resume_from) {   /* the checkpoint's own tokenizer, when it records one, must be the same */
            ds_gguf *ck = NULL;
            uint64_t cfp = 0;
            int cn = 0;
            if (ds_gguf_open(resume_from, &ck) == DS_OK && ds_gguf_vocab_fingerprint(ck, &cfp, &cn) == DS_OK && (cfp != fp || cn != n)) {
                fprintf(stderr, "deepseek train: %s was trained with another tokenizer (%d tokens) than %s (%d tokens)\n", resume_from, cn, o->tokenizer, n);
                ds_gguf_free(ck);
                return 0;
            }
            if (ck) ds_gguf_free(ck);
        }
    } else if (resume_from && ds_gguf_open(resume_from, tok) == DS_OK && ds_gguf_vocab_fingerprint(*tok, &fp, &n) == DS_OK) {
        fprintf(stderr, "deepseek train: the tokenizer comes from %s (%d tokens)\n", resume_from, n);
    } else {
        if (*tok) ds_gguf_free(*tok);
        *tok = NULL;
        if (shard_vocab > 256 || shard_fp) {
            fprintf(stderr, "deepseek train: %s.train.tok was made with a %d-token tokenizer: give it with --tokenizer ('deepseek data --bpe' saves it as %s.tokenizer.gguf)\n",
                    o->data, shard_vocab, o->data);
            return 0;
        }
        return 1;
    }
    if (n != mc->n_vocab) {
        fprintf(stderr, "deepseek train: the tokenizer has %d tokens, the model's n_vocab is %d: set n_vocab = %d\n", n, mc->n_vocab, n);
        return 0;
    }
    if (shard_vocab != n || (shard_fp && shard_fp != fp)) {
        fprintf(stderr, "deepseek train: %s.train.tok was made with another tokenizer (%d tokens%s) than this one (%d tokens)\n", o->data, shard_vocab,
                shard_vocab == n ? ", other tokens" : "", n);
        return 0;
    }
    return 1;
}

/* Resolves --resume: creates the trainer from the checkpoint it loads into resume_from.
   Returns 1 when resuming, 0 when not asked to resume, -1 on a refusal (reported). */
static int resume_trainer(const train_opts *o, ds_model_config *mc, ds_train_config *tc, ds_trainer **tr, char *resume_from, size_t cap) {
    int steps[4096], n, i;
    char path[1024];
    ds_status st;
    if (o->resume) {
        n = 1;
        snprintf(path, sizeof path, "%s", o->resume);
    } else if (!o->resume_latest) {
        return 0;
    } else {
        n = run_list_checkpoints(o->out, steps, 4096);
    }
    for (i = 0; i < n; i++) {
        if (o->resume_latest) run_ckpt_path(path, sizeof path, o->out, steps[i]);
        st = ds_checkpoint_read_config(path, mc, tc);
        if (st == DS_OK) st = ds_model_config_parse(o->overrides, mc, tc, "command line");
        if (st == DS_OK) st = ds_trainer_create(mc, tc, tr);
        if (st == DS_OK && (st = ds_trainer_load_checkpoint(*tr, path)) != DS_OK) {
            ds_trainer_free(*tr);
            *tr = NULL;
        }
        if (st == DS_OK) {
            snprintf(resume_from, cap, "%s", path);
            return 1;
        }
        fprintf(stderr, "deepseek train: %s %s: %s\n", o->resume ? "cannot resume from" : "warning: skipping", path, ds_last_error());
    }
    if (o->resume) return -1;
    /* an explicit --resume never starts afresh: it would be a new run the user did not ask for */
    if (n > 0) fprintf(stderr, "deepseek train: no usable checkpoint in %s to resume from (%d found); '--overwrite' starts over\n", o->out, n);
    else fprintf(stderr, "deepseek train: '--resume': %s holds no checkpoint to resume from; run without '--resume' to start (with '--overwrite' if the folder holds files)\n", o->out);
    return -1;
}

static int run_training(const train_opts *o) {
    ds_model_config mc;
    ds_train_config tc;
    ds_trainer *tr = NULL;
    ds_train_data *data = NULL;
    ds_gguf *tok = NULL;
    ds_status st;
    char path[1024], val[1024], logp[1024], svgp[1024], modelp[1024], resume_from[1024] = "", last_ckpt[1024] = "", first[256];
    FILE *log = NULL;
    double t_start, tokens_done = 0;
    int first_step, rc = 1, resuming, scaling, skip_run = 0, last_saved = -1, made_dir = 0;
    long max_skips;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    if (!o->data) return cli_usage_error("train", "need --data PREFIX (make shards with 'deepseek data')");
    snprintf(logp, sizeof logp, "%s/log.csv", o->out);
    snprintf(svgp, sizeof svgp, "%s/loss.svg", o->out);
    if (o->model) snprintf(modelp, sizeof modelp, "%s", o->model);
    else snprintf(modelp, sizeof modelp, "%s/model.gguf", o->out);
    if (!o->resume && !o->resume_latest && !o->overwrite && folder_entries(o->out, first, sizeof first)) {
        fprintf(stderr, "deepseek train: %s is not empty (it holds %s): '--resume' continues the run there, '--overwrite' starts over\n", o->out, first);
        return 1;
    }
    /* everything that can be refused is checked before DIR is touched */
    if ((resuming = resume_trainer(o, &mc, &tc, &tr, resume_from, sizeof resume_from)) < 0) return 1;
    if (!resuming) {
        size_t len;
        char *text;
        if (!o->config) return cli_usage_error("train", "need -c CONFIG");
        if (!(text = cli_read_file(o->config, &len))) {
            fprintf(stderr, "deepseek train: cannot read %s\n", o->config);
            return 1;
        }
        st = ds_model_config_parse(text, &mc, &tc, o->config);
        free(text);
        if (st != DS_OK) return cli_fail("train", "config", st);
        if ((st = ds_model_config_parse(o->overrides, &mc, &tc, "command line")) != DS_OK) return cli_fail("train", "options", st);
    }
    snprintf(path, sizeof path, "%s.train.tok", o->data);
    snprintf(val, sizeof val, "%s.val.tok", o->data);
    {
        FILE *vf = fopen(val, "rb");
        if (vf) fclose(vf);
        if ((st = ds_train_data_open(path, vf ? val : NULL, &data)) != DS_OK) {
            cli_fail("train", "data", st);
            goto done;
        }
    }
    if (!pick_tokenizer(o, resuming ? resume_from : NULL, &mc, data, &tok)) goto done;
    if (!tr && (st = ds_trainer_create(&mc, &tc, &tr)) != DS_OK) {
        cli_fail("train", "creating the trainer", st);
        goto done;
    }
    tc = *ds_trainer_train_config(tr);
    mc = *ds_trainer_model_config(tr);
    {
        int shard_vocab;
        ds_train_data_vocab(data, &shard_vocab, NULL);
        if (shard_vocab > mc.n_vocab) {
            fprintf(stderr, "deepseek train: %s holds tokens of a %d-token vocabulary, the model's n_vocab is %d\n", path, shard_vocab, mc.n_vocab);
            goto done;
        }
    }
    if (tok && (st = ds_trainer_set_tokenizer(tr, tok)) != DS_OK) {
        cli_fail("train", "tokenizer", st);
        goto done;
    }
    /* the outputs: the folder, then probes of the log and the model path */
    if (mkdir(o->out, 0777) == 0) made_dir = 1;
    else if (errno != EEXIST) {
        fprintf(stderr, "deepseek train: cannot create %s: %s\n", o->out, strerror(errno));
        goto done;
    }
    if (!run_can_create("train", logp) || !run_can_create("train", modelp)) goto done;
    if (o->overwrite) clear_run(o->out);
    run_remove_partial_checkpoints(o->out);
    if (resuming) {
        run_truncate_log(logp, ds_trainer_step_count(tr));
        fprintf(stderr, "deepseek train: resumed from %s at step %d\n", resume_from, ds_trainer_step_count(tr));
        snprintf(last_ckpt, sizeof last_ckpt, "%s", resume_from);
        last_saved = ds_trainer_step_count(tr);
    } else {
        remove(logp);
    }
    made_dir = 0;   /* the run has begun: its folder stays */
    log = fopen(logp, "ab");
    if (!log) {
        fprintf(stderr, "deepseek train: cannot write %s: %s\n", logp, strerror(errno));
        goto done;
    }
    if (ftell(log) == 0) fprintf(log, "step,loss,val_loss,lr,grad_norm,loss_scale,skipped,tokens_per_s\n");
    scaling = !tc.no_loss_scaling && (tc.precision != DS_PREC_F32 || tc.loss_scale > 0.0f);
    max_skips = o->max_skips ? o->max_skips : scaling ? 40 : 5;
    {
        size_t np;
        ds_trainer_params(tr, &np);
        fprintf(stderr, "deepseek train: %zu parameters, %d layers x %d, precision %s, %d x %d tokens x %d accum, %d steps\n", np, mc.n_layer, mc.n_embd,
                tc.precision == DS_PREC_F32 ? "f32" : tc.precision == DS_PREC_BF16 ? "bf16" : tc.precision == DS_PREC_FP16 ? "fp16" : "fp8",
                tc.batch, tc.seq_len, tc.grad_accum, tc.steps);
    }
    first_step = ds_trainer_step_count(tr);
    t_start = ds_time();
    run_stop_signal = 0;
    run_catch_stop_signals(1);
    while (ds_trainer_step_count(tr) < tc.steps && !run_stop_signal) {
        ds_train_step_info info;
        double t0 = ds_time(), dt, rate;
        float vloss = -1;
        int s;
        char eta[32];
        if ((st = ds_trainer_step(tr, data, &info)) != DS_OK) {
            fprintf(stderr, "\ndeepseek train: step %d: %s; stopped, no model written%s%s\n", ds_trainer_step_count(tr), ds_last_error(),
                    last_ckpt[0] ? "; the last good checkpoint is " : "", last_ckpt);
            goto done;
        }
        dt = ds_time() - t0;
        s = info.step;
        tokens_done += info.tokens;
        rate = tokens_done / (ds_time() - t_start);
        skip_run = info.skipped ? skip_run + 1 : 0;
        if (!info.skipped && (s % tc.eval_every == 0 || s == tc.steps) && ds_train_data_count(data, 1) > (uint64_t)tc.seq_len + 1) ds_trainer_eval(tr, data, &vloss);
        fprintf(log, "%d,%.9g,", s, info.loss);
        if (vloss >= 0) fprintf(log, "%.9g", vloss);
        fprintf(log, ",%.6g,%.6g,%g,%d,%.1f\n", info.lr, info.grad_norm, info.loss_scale, info.skipped, info.tokens / dt);
        if (fflush(log) != 0 || ferror(log)) {
            fprintf(stderr, "\ndeepseek train: writing %s failed at step %d: %s; stopped%s%s\n", logp, s, strerror(errno),
                    last_ckpt[0] ? ", the last good checkpoint is " : "", last_ckpt);
            goto done;
        }
        run_fmt_eta(eta, sizeof eta, (tc.steps - s) * (ds_time() - t_start) / (s - first_step));
        if (!o->quiet) {
            fprintf(stderr, "\rstep %d/%d | loss %.4f", s, tc.steps, info.loss);
            if (vloss >= 0) fprintf(stderr, " | val %.4f", vloss);
            fprintf(stderr, " | lr %.2e | %.0f tok/s | ETA %s | scale %g | skipped %d   ", info.lr, rate, eta, info.loss_scale, info.skipped_total);
            if (vloss >= 0 || s == tc.steps) fprintf(stderr, "\n");
        }
        if (skip_run >= max_skips) {
            run_write_svg(logp, svgp);
            fprintf(stderr, "\ndeepseek train: %d steps in a row (to step %d) had an inf or NaN loss or gradients: stopped, no model written%s%s "
                            "(a lower --lr, or --grad_clip 1, may help)\n", skip_run, s, last_ckpt[0] ? "; the last good checkpoint is " : "", last_ckpt);
            goto done;
        }
        /* without loss scaling a skipped step means trouble: no checkpoint until a clean one */
        if ((s % tc.checkpoint_every == 0 || s == tc.steps) && !(info.skipped && !scaling)) {
            run_ckpt_path(path, sizeof path, o->out, s);
            if ((st = ds_trainer_save_checkpoint(tr, path)) != DS_OK) {
                fprintf(stderr, "\ndeepseek train: checkpoint at step %d: %s; stopped%s%s\n", s, ds_last_error(), last_ckpt[0] ? ", the last good checkpoint is " : "", last_ckpt);
                goto done;
            }
            snprintf(last_ckpt, sizeof last_ckpt, "%s", path);
            last_saved = s;
            run_prune_checkpoints(o->out, tc.keep_checkpoints);
            run_write_svg(logp, svgp);
        }
    }
    run_write_svg(logp, svgp);
    if (run_stop_signal) {
        int s = ds_trainer_step_count(tr);
        const char *name = run_stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
        if (s != last_saved && skip_run == 0) {
            run_ckpt_path(path, sizeof path, o->out, s);
            if ((st = ds_trainer_save_checkpoint(tr, path)) != DS_OK) {
                fprintf(stderr, "\ndeepseek train: %s at step %d; the checkpoint failed: %s\n", name, s, ds_last_error());
                goto done;
            }
            snprintf(last_ckpt, sizeof last_ckpt, "%s", path);
            run_prune_checkpoints(o->out, tc.keep_checkpoints);
        }
        fprintf(stderr, "\ndeepseek train: %s: stopped at step %d%s%s; '--resume' continues\n", name, s, last_ckpt[0] ? ", checkpoint " : "", last_ckpt);
        rc = 128 + run_stop_signal;
        goto done;
    }
    if ((st = ds_trainer_save_model(tr, modelp, NULL)) != DS_OK) {
        cli_fail("train", "saving the model", st);
        goto done;
    }
    fprintf(stderr, "deepseek train: model -> %s, log -> %s, plot -> %s\n", modelp, logp, svgp);
    rc = 0;
done:
    run_catch_stop_signals(0);
    if (log) fclose(log);
    if (made_dir) rmdir(o->out);
    ds_trainer_free(tr);
    ds_train_data_free(data);
    if (tok) ds_gguf_free(tok);
    return rc;
}

/* ---- benchmark ---- */
/* The three settings (f32, bf16, f32 with activation checkpointing) run side by side, one step
   of each in turn, so a machine whose speed drifts (shared hosts do) slows all three alike;
   each reports the median of its steps and the totals of its own time. */
#define BENCH_MAX_STEPS 64
enum { B_F32, B_BF16, B_REC, B_N };
typedef struct bench_run {
    ds_trainer *tr;
    double step_t[BENCH_MAX_STEPS], wall, cpu, mm0, mc0;
} bench_run;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}
/* CPU time of the whole process: this thread and the trainers' pool workers */
static double process_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_bench(const train_opts *o) {
    static const char *const names[B_N] = {"f32 ", "bf16", "f32 + activation checkpointing"};
    ds_model_config mc;
    ds_train_config tc;
    bench_run r[B_N];
    double peak, core, bpeak, bcore, med[B_N];
    int32_t *tok, *tgt;
    size_t n, i;
    ds_status st;
    int steps, s, k;
    memset(&mc, 0, sizeof mc);
    memset(&tc, 0, sizeof tc);
    memset(r, 0, sizeof r);
    st = ds_model_config_parse("n_vocab = 8192\nn_embd = 768\nn_layer = 12\nn_head = 12\nn_ff = 2048\ntied_output = 1\n"
                               "batch = 2\nseq_len = 256\n", &mc, &tc, "bench");
    if (st == DS_OK) st = ds_model_config_parse(o->overrides, &mc, &tc, "command line");
    if (st != DS_OK) return cli_fail("train", "bench config", st);
    steps = tc.steps > 0 ? (tc.steps < BENCH_MAX_STEPS ? tc.steps : BENCH_MAX_STEPS) : 5; /* timed steps per setting (--steps N) */
    peak = ds_cpu_f32_peak_gflops(tc.n_threads, 1.0, &core);
    printf("f32 FMA peak (register-only loop, %d threads): %.1f GFLOP/s wall-clock; %.1f GFLOP/s per CPU-second (one core)\n", tc.n_threads, peak, core);
    bpeak = ds_cpu_bf16_peak_gflops(tc.n_threads, 1.0, &bcore);
    if (bpeak > 0.0)
        printf("bf16 dot-product (vdpbf16ps) peak: %.1f GFLOP/s wall-clock; %.1f per CPU-second = %.2fx the f32 FMA peak\n", bpeak, bcore, bcore / core);
    printf("model: %d layers x %d, %d heads, ffn %d, vocab %d; batch %d x sequence %d; %d steps of each setting, interleaved\n", mc.n_layer, mc.n_embd,
           mc.n_head, mc.n_ff, mc.n_vocab, tc.batch, tc.seq_len, steps);
    n = (size_t)tc.batch * tc.seq_len;
    tok = (int32_t *)malloc(n * sizeof *tok);
    tgt = (int32_t *)malloc(n * sizeof *tgt);
    if (!tok || !tgt) {
        free(tok);
        free(tgt);
        return cli_fail("train", "bench", DS_ERR_NO_MEMORY);
    }
    for (i = 0; i < n; i++) {
        tok[i] = (int32_t)((i * 7919) % (size_t)mc.n_vocab);
        tgt[i] = (int32_t)((i * 104729 + 1) % (size_t)mc.n_vocab);
    }
    for (k = 0; k < B_N; k++) {
        ds_train_config c = tc;
        ds_train_step_info info;
        c.precision = k == B_BF16 ? DS_PREC_BF16 : DS_PREC_F32;
        c.recompute = k == B_REC;
        if ((st = ds_trainer_create(&mc, &c, &r[k].tr)) != DS_OK) break;
        ds_trainer_step_tokens(r[k].tr, tok, tgt, &info); /* warm-up: page in every buffer */
        r[k].mm0 = ds_trainer_get_stats(r[k].tr).matmul_seconds;
        r[k].mc0 = ds_trainer_get_stats(r[k].tr).matmul_cpu_seconds;
    }
    for (s = 0; s < steps && st == DS_OK; s++)
        for (k = 0; k < B_N; k++) {
            ds_train_step_info info;
            double t0 = ds_time(), c0 = process_cpu();
            ds_trainer_step_tokens(r[k].tr, tok, tgt, &info);
            r[k].step_t[s] = ds_time() - t0;
            r[k].wall += r[k].step_t[s];
            r[k].cpu += process_cpu() - c0;
        }
    if (st == DS_OK) {
        for (k = 0; k < B_N; k++) {
            double flops = ds_trainer_get_stats(r[k].tr).matmul_flops * steps;
            double mm = flops / (ds_trainer_get_stats(r[k].tr).matmul_seconds - r[k].mm0) * 1e-9, mmc = flops / (ds_trainer_get_stats(r[k].tr).matmul_cpu_seconds - r[k].mc0) * 1e-9;
            med[k] = median(r[k].step_t, steps);
            printf("%s: %7.1f tokens/s, median step %.2f s (%.2f CPU-s), matmuls %.1f GFLOP/s = %.0f%% of the f32 peak", names[k], (double)n / med[k], med[k],
                   r[k].cpu / steps, mm, 100 * mm / peak);
            if (k == B_BF16 && bpeak > 0.0) printf(" = %.0f%% of the bf16 peak", 100 * mm / bpeak);
            printf("; per CPU-second %.1f GFLOP/s; activations %.0f MB\n", mmc, ds_trainer_get_stats(r[k].tr).activation_bytes / 1e6);
        }
        printf("bf16 vs f32: %.2fx the tokens/s (median steps), %.2fx (CPU time)\n", med[B_F32] / med[B_BF16], r[B_F32].cpu / r[B_BF16].cpu);
        printf("activation checkpointing: activations %.0f%% less, step time %+.0f%% (median steps), %+.0f%% CPU time\n",
               100.0 * (1.0 - (double)ds_trainer_get_stats(r[B_REC].tr).activation_bytes / ds_trainer_get_stats(r[B_F32].tr).activation_bytes),
               100.0 * (med[B_REC] / med[B_F32] - 1.0), 100.0 * (r[B_REC].cpu / r[B_F32].cpu - 1.0));
    }
    for (k = 0; k < B_N; k++) ds_trainer_free(r[k].tr);
    free(tok);
    free(tgt);
    return st == DS_OK ? 0 : cli_fail("train", "bench", st);
}

int ds_cmd_train(int argc, char **argv) {
    train_opts o;
    int r = parse_opts(argc, argv, &o);
    if (r) return r == 1 ? 0 : r;
    return o.bench ? run_bench(&o) : run_training(&o);
}
