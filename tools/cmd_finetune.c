/* deepseek finetune: LoRA / QLoRA fine-tuning of a model on JSONL examples. The base stays
   frozen in its stored type; the run writes checkpoints that resume bit-exactly, log.csv,
   loss.svg and, at the end, the adapter as llama.cpp's LoRA GGUF. */
#define _POSIX_C_SOURCE 200809L /* mkdir, access, getrusage */
#include "cli.h"
#include "run_dir.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void finetune_usage(FILE *f) {
    fprintf(f, "usage: deepseek finetune -m BASE --data TRAIN.jsonl -o ADAPTER.gguf [options]\n"
               "Fine-tunes BASE (any type it loads in: F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K; a quantized\n"
               "base stays quantized) through LoRA pairs on its attention and feed-forward projections, and\n"
               "writes the adapter as a llama.cpp LoRA GGUF ('llama-cli --lora ADAPTER.gguf' loads it).\n"
               "TRAIN.jsonl holds one example per line: {\"text\": ...}, {\"prompt\": ..., \"completion\": ...}\n"
               "(only the completion is learnt) or {\"messages\": [{\"role\": ..., \"content\": ...}, ...]} (rendered\n"
               "with the model's chat template; only the assistant turns are learnt).\n"
               "  -m, --model F        the base model (GGUF)\n"
               "  --data F             training examples (JSONL)\n"
               "  --eval F             held-out examples: their loss is printed and logged after each epoch\n"
               "  -o, --out F          the adapter (GGUF) written at the end\n"
               "  --dir DIR            run folder: checkpoints, log.csv, loss.svg (default ADAPTER.run)\n"
               "  --lora-r N           rank (1..65536, default 16)\n"
               "  --lora-alpha F       the update is scaled by alpha / r (> 0, default 32)\n"
               "  --lora-dropout F     dropout on the LoRA input (0 <= F < 1, default 0.1; 0: off)\n"
               "  --lora-targets L     comma list of q,k,v,o,gate,up,down or all (default all)\n"
               "  --epochs N           passes over the data (1..100000, default 3)\n"
               "  --lr F               peak learning rate (default 1e-3), warm-up over the first 5%% of the\n"
               "                       steps, cosine decay to a tenth\n"
               "  --batch N            sequences per micro-batch (default 4)\n"
               "  --seq-len N          tokens per sequence: examples are packed into such windows (default 256)\n"
               "  --grad-accum N       micro-batches per optimizer step (default 1)\n"
               "  --seed N             adapter init, dropout and the per-epoch shuffle (default 1234)\n"
               "  --checkpoint-every N steps between checkpoints (default 50; also at each epoch's end)\n"
               "  --recompute          recompute activations in backward (less memory, ~30%% slower)\n"
               "  -t, --threads N      threads (0..512, 0: all CPUs)\n"
               "  --resume             continue the run in DIR from its newest checkpoint (its settings win)\n"
               "  --overwrite          start afresh in a DIR that holds an earlier run\n"
               "  --quiet              no progress bar\n"
               "Ctrl-C (SIGINT) or SIGTERM: the run finishes its step, writes a checkpoint and exits with\n"
               "status 130 (143 for SIGTERM); '--resume' continues it bit-exactly.\n");
}

typedef struct ft_opts {
    const char *model, *data, *eval, *out, *dir, *targets;
    long r, epochs, batch, seq_len, accum, threads, ckpt_every;
    double alpha, dropout, lr;
    unsigned long long seed;
    int resume, overwrite, quiet, recompute;
    char dir_buf[1024];
} ft_opts;

static int parse_targets(const char *s, unsigned *out) {
    static const char *const names[] = {"q", "k", "v", "o", "gate", "up", "down"};
    char buf[256], *tok, *save = NULL;
    unsigned t = 0, i;
    snprintf(buf, sizeof buf, "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        if (!strcmp(tok, "all")) {
            t |= DS_LORA_ALL;
            continue;
        }
        for (i = 0; i < 7; i++)
            if (!strcmp(tok, names[i])) {
                t |= 1u << i;
                found = 1;
            }
        if (!found) return 0;
    }
    *out = t;
    return t != 0;
}

static int parse_opts(int argc, char **argv, ft_opts *o) {
    int i;
    memset(o, 0, sizeof *o);
    o->r = 16; o->alpha = 32; o->dropout = 0.1; o->epochs = 3; o->lr = 1e-3; o->batch = 4; o->seq_len = 256; o->accum = 1;
    o->seed = 1234; o->ckpt_every = 50;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            finetune_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--resume")) { o->resume = 1; continue; }
        if (!strcmp(a, "--overwrite")) { o->overwrite = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--recompute")) { o->recompute = 1; continue; }
        if (!(v = cli_value(argc, argv, &i, "finetune"))) return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--eval")) o->eval = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--dir")) o->dir = v;
        else if (!strcmp(a, "--lora-targets")) {
            unsigned t;
            if (!parse_targets(v, &t)) return cli_usage_error("finetune", "--lora-targets: '%s': need a comma list of q, k, v, o, gate, up, down or all", v);
            o->targets = v;
        } else if (!strcmp(a, "--lora-r")) {
            if (!cli_int_opt("finetune", a, v, 1, 65536, &o->r)) return 2;
        } else if (!strcmp(a, "--lora-alpha")) {
            if (!cli_float_opt("finetune", a, v, 1e-30, 1e30, &o->alpha)) return 2;
        } else if (!strcmp(a, "--lora-dropout")) {
            if (!cli_float_opt("finetune", a, v, 0, 0.999999, &o->dropout)) return 2;
        } else if (!strcmp(a, "--epochs")) {
            if (!cli_int_opt("finetune", a, v, 1, 100000, &o->epochs)) return 2;
        } else if (!strcmp(a, "--lr")) {
            if (!cli_float_opt("finetune", a, v, 1e-12, 10, &o->lr)) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (!cli_int_opt("finetune", a, v, 1, 65536, &o->batch)) return 2;
        } else if (!strcmp(a, "--seq-len")) {
            if (!cli_int_opt("finetune", a, v, 2, 1 << 20, &o->seq_len)) return 2;
        } else if (!strcmp(a, "--grad-accum")) {
            if (!cli_int_opt("finetune", a, v, 1, 65536, &o->accum)) return 2;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (!cli_int_opt("finetune", a, v, 1, 1000000000, &o->ckpt_every)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int_opt("finetune", a, v, 0, CLI_MAX_THREADS, &o->threads)) return 2;
        } else if (!strcmp(a, "--seed")) {
            long s;
            if (!cli_int_opt("finetune", a, v, 1, 2147483647L, &s)) return 2;
            o->seed = (unsigned long long)s;
        } else {
            return cli_usage_error("finetune", "unknown argument %s", a);
        }
    }
    if (!o->model) return cli_usage_error("finetune", "need -m BASE");
    if (!o->data) return cli_usage_error("finetune", "need --data TRAIN.jsonl");
    if (!o->out) return cli_usage_error("finetune", "need -o ADAPTER.gguf");
    if (o->overwrite && o->resume) return cli_usage_error("finetune", "--overwrite and --resume contradict each other");
    if (!o->dir) {
        snprintf(o->dir_buf, sizeof o->dir_buf, "%s.run", o->out);
        o->dir = o->dir_buf;
    }
    return 0;
}

/* mean loss over the eval windows, weighted by their learnt tokens */
static int eval_loss(ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int64_t nw, int B, int T, float *out) {
    double sum = 0, count = 0;
    int64_t w, i;
    for (w = 0; w < nw; w += B) {
        int b = (int)(nw - w < B ? nw - w : B), c = 0;
        float l;
        for (i = 0; i < (int64_t)b * T; i++) c += tgt[w * T + i] >= 0;
        if (!c) continue;
        if (ds_trainer_loss(tr, tok + w * T, tgt + w * T, b, T, &l) != DS_OK) return 0;
        sum += (double)l * c;
        count += c;
    }
    *out = count > 0 ? (float)(sum / count) : 0.0f;
    return 1;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return ru.ru_maxrss / 1024.0;   /* Linux: KiB */
}

static void ft_bar(char *buf, size_t n, double frac) {
    size_t w = n - 1, i, full = (size_t)(frac * (double)w + 0.5);
    for (i = 0; i < w; i++) buf[i] = i < full ? '#' : '.';
    buf[w] = 0;
}

static int run(const ft_opts *o) {
    ds_model *m = NULL;
    ds_trainer *tr = NULL;
    ds_sft_data *data = NULL, *evd = NULL;
    ds_lora_config lc;
    ds_train_config tc;
    ds_status st;
    int32_t *tok = NULL, *tgt = NULL, *etok = NULL, *etgt = NULL, *btok = NULL, *btgt = NULL;
    int64_t nw = 0, enw = 0, learnt;
    int spe, per_step, steps, rc = 1, first_step, last_saved = -1, made_dir = 0;
    char logp[1100], svgp[1100], path[1100], last_ckpt[1100] = "", first_name[256];
    FILE *log = NULL;
    double t_start, tokens_done = 0;
    struct stat sb;
    int ck_found[1];
    snprintf(logp, sizeof logp, "%s/log.csv", o->dir);
    snprintf(svgp, sizeof svgp, "%s/loss.svg", o->dir);
    if ((st = ds_model_load(o->model, NULL, &m)) != DS_OK) return cli_fail("finetune", o->model, st);
    if ((st = ds_sft_data_load(m, o->data, &data)) != DS_OK) {
        cli_fail("finetune", "--data", st);
        goto done;
    }
    if (o->eval && (st = ds_sft_data_load(m, o->eval, &evd)) != DS_OK) {
        cli_fail("finetune", "--eval", st);
        goto done;
    }
    memset(&lc, 0, sizeof lc);
    memset(&tc, 0, sizeof tc);
    if (o->resume) {   /* the run's own settings, from its newest checkpoint */
        int ck[4096], n = run_list_checkpoints(o->dir, ck, 4096), i;
        for (i = 0; i < n && !tr; i++) {
            ds_model_config mc;
            run_ckpt_path(path, sizeof path, o->dir, ck[i]);
            st = ds_checkpoint_read_config(path, &mc, &tc);
            if (st == DS_OK) st = ds_checkpoint_read_lora(path, &lc);
            if (st == DS_OK) st = ds_trainer_create_lora(m, &lc, &tc, &tr);
            if (st == DS_OK && (st = ds_trainer_load_checkpoint(tr, path)) != DS_OK) {
                ds_trainer_free(tr);
                tr = NULL;
            }
            if (st != DS_OK) fprintf(stderr, "deepseek finetune: warning: skipping %s: %s\n", path, ds_last_error());
        }
        if (!tr) {
            fprintf(stderr, "deepseek finetune: no usable checkpoint in %s to resume from (%d found)\n", o->dir, n);
            goto done;
        }
        snprintf(last_ckpt, sizeof last_ckpt, "%s", path);
    } else if (!o->overwrite && run_list_checkpoints(o->dir, ck_found, 1) > 0) {
        fprintf(stderr, "deepseek finetune: %s holds an earlier run: '--resume' continues it, '--overwrite' starts over\n", o->dir);
        goto done;
    }
    if (!tr) {
        lc.r = (int)o->r;
        lc.alpha = (float)o->alpha;
        lc.dropout = o->dropout > 0 ? (float)o->dropout : -1.0f;
        if (o->targets) parse_targets(o->targets, &lc.targets);
        tc.batch = (int)o->batch;
        tc.seq_len = (int)o->seq_len;
        tc.grad_accum = (int)o->accum;
        tc.lr = (float)o->lr;
        tc.weight_decay = -1;   /* none, as PEFT's usual trainer settings */
        tc.seed = o->seed;
        tc.recompute = o->recompute;
        tc.n_threads = (int)o->threads;
        tc.checkpoint_every = (int)o->ckpt_every;
        tc.keep_checkpoints = 2;
    }
    /* the schedule follows from the data: steps per epoch over the packed windows */
    if ((st = ds_sft_data_pack(data, tc.seq_len, tc.seed, 0, &tok, &tgt, &nw)) != DS_OK) {
        cli_fail("finetune", "packing", st);
        goto done;
    }
    per_step = tc.batch * (tc.grad_accum ? tc.grad_accum : 1);
    spe = (int)((nw + per_step - 1) / per_step);
    if (!tr) {
        tc.steps = spe * (int)o->epochs;
        tc.warmup = tc.steps / 20;
        if ((st = ds_trainer_create_lora(m, &lc, &tc, &tr)) != DS_OK) {
            cli_fail("finetune", "creating the trainer", st);
            goto done;
        }
    }
    tc = *ds_trainer_train_config(tr);
    lc = *ds_trainer_lora_config(tr);
    per_step = tc.batch * tc.grad_accum;
    steps = tc.steps;
    if (evd && (st = ds_sft_data_pack(evd, tc.seq_len, 0, -1, &etok, &etgt, &enw)) != DS_OK) {
        cli_fail("finetune", "packing --eval", st);
        goto done;
    }
    btok = (int32_t *)malloc(sizeof(int32_t) * (size_t)per_step * tc.seq_len);
    btgt = (int32_t *)malloc(sizeof(int32_t) * (size_t)per_step * tc.seq_len);
    if (!btok || !btgt) {
        fprintf(stderr, "deepseek finetune: out of memory\n");
        goto done;
    }
    /* the outputs: folder, then probes */
    if (mkdir(o->dir, 0777) == 0) made_dir = 1;
    else if (errno != EEXIST || stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "deepseek finetune: cannot create %s: %s\n", o->dir, errno == EEXIST ? "not a folder" : strerror(errno));
        goto done;
    }
    if (!run_can_create("finetune", logp) || !run_can_create("finetune", o->out)) goto done;
    run_remove_partial_checkpoints(o->dir);
    if (o->overwrite) {
        int ck[4096], n = run_list_checkpoints(o->dir, ck, 4096), i;
        for (i = 0; i < n; i++) {
            run_ckpt_path(path, sizeof path, o->dir, ck[i]);
            remove(path);
        }
    }
    if (o->resume) {
        run_truncate_log(logp, ds_trainer_step_count(tr));
        last_saved = ds_trainer_step_count(tr);
        fprintf(stderr, "deepseek finetune: resumed from %s at step %d\n", last_ckpt, last_saved);
    } else {
        remove(logp);
    }
    made_dir = 0;
    (void)first_name;
    log = fopen(logp, "ab");
    if (!log) {
        fprintf(stderr, "deepseek finetune: cannot write %s: %s\n", logp, strerror(errno));
        goto done;
    }
    if (ftell(log) == 0) fprintf(log, "step,loss,eval_loss,lr,grad_norm,epoch,tokens_per_s\n");
    ds_sft_data_tokens(data, &learnt);
    {
        size_t np;
        ds_trainer_params(tr, &np);
        fprintf(stderr, "deepseek finetune: %lld examples, %lld tokens (%lld learnt) in %lld windows of %d; LoRA r %d alpha %g dropout %g on 0x%02x: %zu parameters; "
                        "%d epochs x %d steps of %d x %d\n",
                (long long)ds_sft_data_examples(data), (long long)ds_sft_data_tokens(data, NULL), (long long)learnt, (long long)nw, tc.seq_len, lc.r,
                (double)lc.alpha, lc.dropout > 0 ? (double)lc.dropout : 0.0, lc.targets, np, spe ? steps / spe : 0, spe, tc.batch, tc.grad_accum);
    }
    first_step = ds_trainer_step_count(tr);
    t_start = ds_time();
    run_stop_signal = 0;
    run_catch_stop_signals(1);
    while (ds_trainer_step_count(tr) < steps && !run_stop_signal) {
        ds_train_step_info info;
        int s0 = ds_trainer_step_count(tr), epoch = s0 / spe, end_of_epoch;
        double t0 = ds_time(), rate;
        float eloss = -1;
        char eta[32], bar[31];
        /* the step's windows: a function of the step (a new shuffle each epoch) */
        if ((st = ds_sft_data_step(data, tr, s0, btok, btgt, NULL)) != DS_OK) {
            cli_fail("finetune", "batch", st);
            goto done;
        }
        if ((st = ds_trainer_step_tokens(tr, btok, btgt, &info)) != DS_OK) {
            fprintf(stderr, "\ndeepseek finetune: step %d: %s; stopped%s%s\n", s0 + 1, ds_last_error(), last_ckpt[0] ? "; the last good checkpoint is " : "", last_ckpt);
            goto done;
        }
        tokens_done += info.tokens;
        rate = tokens_done / (ds_time() - t_start);
        end_of_epoch = info.step % spe == 0 || info.step == steps;
        if (end_of_epoch && etok && !eval_loss(tr, etok, etgt, enw, tc.batch, tc.seq_len, &eloss)) {
            cli_fail("finetune", "eval", DS_ERR_STATE);
            goto done;
        }
        fprintf(log, "%d,%.9g,", info.step, info.loss);
        if (eloss >= 0) fprintf(log, "%.9g", eloss);
        fprintf(log, ",%.6g,%.6g,%d,%.1f\n", info.lr, info.grad_norm, epoch + 1, info.tokens / (ds_time() - t0));
        if (fflush(log) != 0 || ferror(log)) {
            fprintf(stderr, "\ndeepseek finetune: writing %s failed: %s\n", logp, strerror(errno));
            goto done;
        }
        if (!o->quiet) {
            run_fmt_eta(eta, sizeof eta, (steps - info.step) * (ds_time() - t_start) / (info.step - first_step));
            ft_bar(bar, sizeof bar, (double)(info.step - epoch * spe) / spe);
            fprintf(stderr, "\repoch %d/%d [%s] step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | ETA %s   ", epoch + 1, steps / spe, bar, info.step, steps, info.loss,
                    info.lr, rate, eta);
            if (end_of_epoch) fprintf(stderr, "\n");
        }
        if (eloss >= 0) fprintf(stderr, "deepseek finetune: epoch %d: eval loss %.4f\n", epoch + 1, eloss);
        if (info.step % tc.checkpoint_every == 0 || end_of_epoch) {
            run_ckpt_path(path, sizeof path, o->dir, info.step);
            if ((st = ds_trainer_save_checkpoint(tr, path)) != DS_OK) {
                fprintf(stderr, "\ndeepseek finetune: checkpoint at step %d: %s; stopped\n", info.step, ds_last_error());
                goto done;
            }
            snprintf(last_ckpt, sizeof last_ckpt, "%s", path);
            last_saved = info.step;
            run_prune_checkpoints(o->dir, tc.keep_checkpoints);
            run_write_svg(logp, svgp);
        }
    }
    run_write_svg(logp, svgp);
    if (run_stop_signal) {
        int s = ds_trainer_step_count(tr);
        if (s != last_saved) {
            run_ckpt_path(path, sizeof path, o->dir, s);
            if ((st = ds_trainer_save_checkpoint(tr, path)) != DS_OK) {
                fprintf(stderr, "\ndeepseek finetune: stopped at step %d; the checkpoint failed: %s\n", s, ds_last_error());
                goto done;
            }
            run_prune_checkpoints(o->dir, tc.keep_checkpoints);
        }
        fprintf(stderr, "\ndeepseek finetune: %s: stopped at step %d; '--resume' continues\n", run_stop_signal == SIGINT ? "SIGINT" : "SIGTERM", s);
        rc = 128 + run_stop_signal;
        goto done;
    }
    if ((st = ds_trainer_save_lora(tr, o->out)) != DS_OK) {
        cli_fail("finetune", "saving the adapter", st);
        goto done;
    }
    {
        ds_trainer_stats ts = ds_trainer_get_stats(tr);
        fprintf(stderr, "deepseek finetune: adapter -> %s, log -> %s, plot -> %s; %.0f tokens/s, peak RSS %.0f MiB (activations %.0f MiB), base file %.0f MiB\n", o->out, logp,
                svgp, tokens_done / (ds_time() - t_start), peak_rss_mb(), ts.activation_bytes / 1048576.0, stat(o->model, &sb) == 0 ? sb.st_size / 1048576.0 : 0.0);
    }
    rc = 0;
done:
    run_catch_stop_signals(0);
    if (log) fclose(log);
    if (made_dir) rmdir(o->dir);
    free(btok);
    free(btgt);
    ds_free(tok);
    ds_free(tgt);
    ds_free(etok);
    ds_free(etgt);
    ds_trainer_free(tr);
    ds_sft_data_free(data);
    ds_sft_data_free(evd);
    ds_model_free(m);
    return rc;
}

int ds_cmd_finetune(int argc, char **argv) {
    ft_opts o;
    int r = parse_opts(argc, argv, &o);
    if (r) return r == 1 ? 0 : 2;
    return run(&o);
}
