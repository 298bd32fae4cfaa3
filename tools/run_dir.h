/* run_dir.h - what the training commands (train, finetune) share about a run folder DIR:
   checkpoints DIR/ckpt-<step>.gguf with rotation, log.csv, the loss.svg plot, the ETA text and
   stopping on SIGINT / SIGTERM at a step's end. */
#ifndef DS_RUN_DIR_H
#define DS_RUN_DIR_H
#include <signal.h>
#include <stddef.h>

/* the checkpoints' steps, newest first (at most cap) */
int run_list_checkpoints(const char *dir, int *steps, int cap);
/* a run killed while writing a checkpoint leaves DIR/ckpt-<step>.gguf.tmp: never a checkpoint */
void run_remove_partial_checkpoints(const char *dir);
void run_ckpt_path(char *buf, size_t n, const char *dir, int step);
/* keep the newest `keep` checkpoints */
void run_prune_checkpoints(const char *dir, int keep);
/* log.csv keeps the rows up to `step` (a resumed run rewrites what follows) */
int run_truncate_log(const char *path, int step);
/* loss.svg from log.csv rows "step,loss,val_loss,...": training loss (line), validation (dots) */
void run_write_svg(const char *csv, const char *svg);
void run_fmt_eta(char *buf, size_t n, double s);
/* can a file be created at path? (the probe is removed again; reports why not as "deepseek CMD") */
int run_can_create(const char *cmd, const char *path);
/* set by SIGINT / SIGTERM while catching (the step finishes, a checkpoint follows) */
extern volatile sig_atomic_t run_stop_signal;
/* on: SIGINT / SIGTERM set run_stop_signal, a second one kills (SA_RESETHAND); off: defaults */
void run_catch_stop_signals(int on);
#endif
