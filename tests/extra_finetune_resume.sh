#!/usr/bin/env bash
# A LoRA fine-tuning run over a Q4_1 base (dropout on, a checkpoint every step) killed with
# SIGKILL at random moments and resumed each time writes the same adapter, byte for byte, and
# logs the same losses as an uninterrupted run. Also the CLI's refusals of bad settings and
# data, each naming what is wrong.
set -u
cd "$(dirname "$0")/.."
name=finetune_resume_after_sigkill
PYTHON=${PYTHON:-python3}
if [ ! -x ./deepseek ]; then echo "SKIP $name: ./deepseek is not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$tmp" <<'PY'
import sys, random, json
d = sys.argv[1]
r = random.Random(3)
words = "the king shall speak of night and day to all his men who fight for love".split()
with open(d + "/corpus.txt", "w") as f:
    f.write(" ".join(r.choice(words) for _ in range(20000)))
with open(d + "/train.jsonl", "w") as f:
    for i in range(48):
        a, b = r.randrange(100), r.randrange(100)
        f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": str(a + b)}) + "\n")
with open(d + "/eval.jsonl", "w") as f:
    f.write(json.dumps({"text": "12+30=42"}) + "\n")
PY
# the base: a tiny byte-vocabulary llama, one training step, quantized to Q4_1
./deepseek data -o "$tmp/d" "$tmp/corpus.txt" 2>/dev/null || { echo "FAIL $name: deepseek data failed"; exit 0; }
cat > "$tmp/c.cfg" <<'CFG'
n_vocab = 256
n_embd = 64
n_layer = 2
n_head = 4
n_head_kv = 2
n_ff = 96
batch = 2
seq_len = 32
steps = 1
threads = 2
CFG
./deepseek train -c "$tmp/c.cfg" --data "$tmp/d" -o "$tmp/base" --quiet 2>/dev/null || { echo "FAIL $name: deepseek train failed"; exit 0; }
./deepseek quantize "$tmp/base/model.gguf" "$tmp/base.gguf" Q4_1 --pure -t 2 >/dev/null 2>&1 || { echo "FAIL $name: deepseek quantize failed"; exit 0; }
run() { exec ./deepseek finetune -m "$tmp/base.gguf" --data "$tmp/train.jsonl" --eval "$tmp/eval.jsonl" --lora-r 4 --lora-alpha 8 \
        --lora-dropout 0.1 --epochs 30 --seq-len 32 --batch 2 --checkpoint-every 1 -t 2 --quiet "$@"; }
(run -o "$tmp/ref.gguf") 2>"$tmp/ref.err" || { echo "FAIL $name: the uninterrupted run failed: $(tail -1 "$tmp/ref.err")"; exit 0; }
kills=0
for attempt in $(seq 1 40); do
  if [ $attempt -eq 1 ]; then run -o "$tmp/k.gguf" 2>>"$tmp/k.err" & else run -o "$tmp/k.gguf" --resume 2>>"$tmp/k.err" & fi
  pid=$!
  sleep "$("$PYTHON" -c "import random; print(random.uniform(0.05, 0.3))")"
  if ! kill -0 $pid 2>/dev/null; then wait $pid; break; fi
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  kills=$((kills+1))
  [ $kills -ge 8 ] && break
done
if [ ! -f "$tmp/k.gguf" ]; then
  (run -o "$tmp/k.gguf" --resume) 2>>"$tmp/k.err" || { echo "FAIL $name: the final resume failed: $(tail -1 "$tmp/k.err")"; exit 0; }
fi
cut -d, -f1,2,3 "$tmp/ref.gguf.run/log.csv" > "$tmp/a"
cut -d, -f1,2,3 "$tmp/k.gguf.run/log.csv" > "$tmp/b"
if ! cmp -s "$tmp/a" "$tmp/b"; then echo "FAIL $name: losses differ after $kills kills: $(diff "$tmp/a" "$tmp/b" | head -3 | tr '\n' ' ')"; exit 0; fi
if ! cmp -s "$tmp/ref.gguf" "$tmp/k.gguf"; then echo "FAIL $name: the adapters differ after $kills kills"; exit 0; fi
if [ $kills -eq 0 ]; then echo "FAIL $name: the run finished before any kill"; exit 0; fi
echo "PASS $name ($kills kills; $(($(wc -l < "$tmp/a")-1)) steps and the adapter bit-identical)"

# refusals: each exits non-zero with a message naming the problem
name=finetune_refuses_bad_input
printf '{"prompt": "1+1=", "completion": "2"}\n{"prompt": "2+2=" "completion": "4"}\n' > "$tmp/bad.jsonl"
: > "$tmp/empty.jsonl"
check() { # expected-substring, then arguments
  local want=$1 out; shift
  out=$(./deepseek finetune -m "$tmp/base.gguf" -o "$tmp/x.gguf" --quiet "$@" 2>&1) && { echo "FAIL $name: accepted $*"; return 1; }
  grep -qF -- "$want" <<< "$out" || { echo "FAIL $name: $* said '$out', expected '$want'"; return 1; }
}
check "--lora-r" --data "$tmp/train.jsonl" --lora-r 0 &&
check "--lora-alpha" --data "$tmp/train.jsonl" --lora-alpha 0 &&
check "--lora-alpha" --data "$tmp/train.jsonl" --lora-alpha -1 &&
check "bad.jsonl:2" --data "$tmp/bad.jsonl" &&
check "no examples" --data "$tmp/empty.jsonl" &&
check "--lora-targets" --data "$tmp/train.jsonl" --lora-targets q,x &&
echo "PASS $name"
