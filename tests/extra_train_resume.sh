#!/usr/bin/env bash
# needs: gguf
# A training run killed with SIGKILL at random moments (many of them while a checkpoint is being
# written: one is written every step) and resumed each time logs the same losses, bit for bit,
# as an uninterrupted run; every checkpoint file left behind is a valid GGUF (checked with the
# gguf Python package) and no partial file is ever taken for a checkpoint.
set -u
cd "$(dirname "$0")/.."
name=train_resume_after_sigkill
PYTHON=${PYTHON:-python3}
if [ ! -x ./deepseek ]; then echo "SKIP $name: ./deepseek is not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$tmp/corpus.txt" <<'PY'
import sys, random
r = random.Random(5)
words = "the king shall speak of night and day to all his men who fight for love".split()
with open(sys.argv[1], "w") as f:
    f.write(" ".join(r.choice(words) for _ in range(60000)))
PY
./deepseek data -o "$tmp/d" "$tmp/corpus.txt" 2>/dev/null || { echo "FAIL $name: deepseek data failed"; exit 0; }
cat > "$tmp/c.cfg" <<'CFG'
n_vocab = 256
n_embd = 96
n_layer = 2
n_head = 4
n_head_kv = 2
n_ff = 192
batch = 4
seq_len = 32
steps = 36
lr = 2e-3
warmup = 3
checkpoint_every = 1
keep_checkpoints = 3
eval_every = 6
eval_batches = 2
threads = 2
precision = fp16
CFG
run() { exec ./deepseek train -c "$tmp/c.cfg" --data "$tmp/d" --quiet "$@"; }
(run -o "$tmp/ref") 2>/dev/null || { echo "FAIL $name: the uninterrupted run failed"; exit 0; }
kills=0; in_write=0; bad=""
for attempt in $(seq 1 40); do
  # '--resume' once a checkpoint exists ('--resume' never starts a run); before that a fresh start
  if ls "$tmp"/k/ckpt-*.gguf >/dev/null 2>&1; then how=--resume; else how=--overwrite; fi
  run -o "$tmp/k" $how 2>>"$tmp/k.err" &
  pid=$!
  sleep "$("$PYTHON" -c "import random; print(random.uniform(0.05, 0.5))")"
  if ! kill -0 $pid 2>/dev/null; then wait $pid; break; fi
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  kills=$((kills+1))
  ls "$tmp/k"/*.tmp >/dev/null 2>&1 && in_write=$((in_write+1))
  for f in "$tmp/k"/ckpt-*.gguf; do
    [ -f "$f" ] || continue
    "$PYTHON" -c "import gguf,sys; r=gguf.GGUFReader(sys.argv[1]); assert any(t.name=='opt.v.output_norm.weight' for t in r.tensors)" "$f" 2>/dev/null || bad="$bad $(basename "$f")"
  done
  [ $kills -ge 12 ] && [ $in_write -ge 2 ] && break
done
# what a kill during a write leaves, planted for certain: a partial temp file of a newer step
last=$(ls "$tmp/k"/ckpt-*.gguf | tail -1)
head -c 5000 "$last" > "$tmp/k/ckpt-99999999.gguf.tmp"
(run -o "$tmp/k" --resume) 2>>"$tmp/k.err" || { echo "FAIL $name: the final resume failed: $(tail -1 "$tmp/k.err")"; exit 0; }
if [ -n "$bad" ]; then echo "FAIL $name: invalid checkpoint files left:$bad"; exit 0; fi
cut -d, -f1,2,3 "$tmp/ref/log.csv" > "$tmp/a"
cut -d, -f1,2,3 "$tmp/k/log.csv" > "$tmp/b"
if ! cmp -s "$tmp/a" "$tmp/b"; then
  echo "FAIL $name: losses differ after $kills kills: $(diff "$tmp/a" "$tmp/b" | head -3 | tr '\n' ' ')"; exit 0
fi
if ! cmp -s "$tmp/ref/model.gguf" "$tmp/k/model.gguf"; then echo "FAIL $name: the final models differ"; exit 0; fi
if [ -e "$tmp/k/ckpt-99999999.gguf.tmp" ]; then echo "FAIL $name: a partial checkpoint was not cleaned up"; exit 0; fi
if [ $kills -eq 0 ]; then echo "FAIL $name: the run finished before any kill"; exit 0; fi
echo "PASS $name ($kills kills, $in_write during a checkpoint write; $(($(wc -l < "$tmp/a")-1)) steps bit-identical)"
