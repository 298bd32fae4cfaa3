#!/usr/bin/env bash
# Trains the same small byte-level model on a text file in f32, bf16 and fp8 with the same seed and
# budget, and prints the final validation losses and their differences from f32.
# usage: tools/train_precision_compare.sh TEXT_FILE [STEPS] [OUT_DIR]
set -eu
text=$1; steps=${2:-300}; out=${3:-precision-compare}
mkdir -p "$out"
./deepseek data -o "$out/data" "$text"
cat > "$out/model.cfg" <<CFG
n_vocab = 256
n_embd = 128
n_layer = 4
n_head = 4
n_ff = 352
tied_output = 1
batch = 8
seq_len = 128
steps = $steps
lr = 2e-3
warmup = 20
weight_decay = 0.1
eval_every = 50
eval_batches = 16
checkpoint_every = $steps
keep_checkpoints = 1
CFG
for p in f32 bf16 fp8; do
  ./deepseek train -c "$out/model.cfg" --data "$out/data" -o "$out/$p" --overwrite --precision "$p" --quiet "${@:4}"
done
ref=$(tail -1 "$out/f32/log.csv" | cut -d, -f3)
for p in f32 bf16 fp8; do
  v=$(tail -1 "$out/$p/log.csv" | cut -d, -f3)
  python3 -c "import sys; v=float('$v'); r=float('$ref'); print(f'$p: final validation loss {v:.4f} ({100*(v-r)/r:+.2f}% vs f32)')"
done
