#!/usr/bin/env bash
# `deepseek train` and `deepseek data` under careless and hostile use (issue #10): a diverging
# run stops instead of training through inf/NaN; damaged checkpoints are caught by their data
# checksum and skipped; --resume never starts over on top of a finished run and a fresh run
# never mixes with an old one; the tokenizer is checked against the model and the shards;
# Ctrl-C checkpoints; a full disk during a checkpoint loses nothing. Every checkpoint and model
# left behind is checked with the gguf package, its checksum with the reference xxHash library
# (libxxhash through ctypes) where present, its weights for finiteness with numpy.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x ./deepseek ]; then echo "SKIP train_faults: ./deepseek is not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
D=$PWD/deepseek
pass() { echo "PASS $1${2:+ ($2)}"; }
fail() { echo "FAIL $1: $2"; }

"$PYTHON" - "$tmp/corpus.txt" <<'PY'
import sys, random
r = random.Random(5)
words = "the king shall speak of night and day to all his men who fight for love".split()
with open(sys.argv[1], "w") as f:
    f.write(" ".join(r.choice(words) for _ in range(20000)))
PY
$D data -o "$tmp/d" "$tmp/corpus.txt" 2>/dev/null || { fail train_faults "deepseek data failed"; exit 0; }
cat > "$tmp/c.cfg" <<'CFG'
n_vocab = 256
n_embd = 32
n_layer = 1
n_head = 2
n_ff = 64
batch = 2
seq_len = 16
steps = 16
lr = 2e-3
checkpoint_every = 4
keep_checkpoints = 3
eval_every = 8
eval_batches = 1
threads = 1
CFG
train() { $D train -c "$tmp/c.cfg" --data "$tmp/d" --quiet "$@"; }

# checks GGUF files: readable by the gguf package, the checksum key (when asked for) equal to
# libxxhash's XXH64 of the data section, every f32 tensor finite. Prints what is wrong.
have_gguf=0
"$PYTHON" -c "import gguf, numpy" 2>/dev/null && have_gguf=1
check_gguf() {
  [ $have_gguf = 1 ] || return 0
  "$PYTHON" - "$@" <<'PY'
import sys, ctypes, numpy as np, gguf
try:
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH64.restype = ctypes.c_uint64
    lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
except OSError:
    lib = None
errors = []
print = errors.append
for path in sys.argv[1:]:
    try:
        r = gguf.GGUFReader(path)
    except Exception as e:
        print(f"{path}: the gguf package cannot read it: {e}"); continue
    f = r.fields.get("deepseek_h.data_xxh64")
    if f is None:
        print(f"{path}: no checksum key"); continue
    data = open(path, "rb").read()[r.data_offset:]
    if lib is not None and lib.XXH64(data, len(data), 0) != int(f.parts[f.data[0]][0]):
        print(f"{path}: the checksum does not match libxxhash's XXH64")
    for t in r.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.F32 and not np.isfinite(t.data).all():
            print(f"{path}: tensor {t.name} holds inf or NaN")
if errors:
    sys.stdout.write("; ".join(errors) + "\n")
PY
}

# ---- 2: a diverging run stops, writes no model, keeps finite checkpoints, plots finite values
name=train_stops_on_nonfinite_loss
train -o "$tmp/div" --lr 10 --warmup 1 --grad_clip -1 --checkpoint_every 1 --steps 40 2>"$tmp/div.err"; rc=$?
bad=$(check_gguf "$tmp"/div/ckpt-*.gguf)
if [ $rc -eq 0 ]; then fail $name "exit status 0 for a run whose loss went inf"
elif ! grep -q "inf or NaN" "$tmp/div.err"; then fail $name "no reason given: $(tail -1 "$tmp/div.err")"
elif [ -e "$tmp/div/model.gguf" ]; then fail $name "a model was written"
elif grep -qiE "inf|nan" "$tmp/div/loss.svg"; then fail $name "loss.svg holds non-finite coordinates"
elif ! grep -q ",inf,\|,nan,\|,-nan," "$tmp/div/log.csv"; then fail $name "the run never diverged: the test lost its point"
elif [ -n "$bad" ]; then fail $name "$bad"
else pass $name "exit $rc, $(ls "$tmp"/div/ckpt-*.gguf 2>/dev/null | wc -l) checkpoint(s) kept"; fi

# ---- a reference run, uninterrupted, for the resume comparisons below
train -o "$tmp/ref" 2>/dev/null || { fail train_faults "the reference run failed"; exit 0; }
refbad=$(check_gguf "$tmp"/ref/ckpt-*.gguf "$tmp/ref/model.gguf")
[ -z "$refbad" ] || fail checkpoints_valid_gguf_with_checksum "$refbad"
[ -z "$refbad" ] && pass checkpoints_valid_gguf_with_checksum

# ---- 3: damaged checkpoints are skipped with a warning; the resumed run equals the reference
name=damaged_checkpoint_falls_back
cp -r "$tmp/ref" "$tmp/dmg"
for s in 16 12; do
  f="$tmp/dmg/ckpt-000000$s.gguf"; sz=$(stat -c %s "$f")
  head -c 4096 /dev/urandom | dd of="$f" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
done
train -o "$tmp/dmg" --resume 2>"$tmp/dmg.err"; rc=$?
if [ $rc -ne 0 ]; then fail $name "exit $rc: $(tail -1 "$tmp/dmg.err")"
elif [ "$(grep -c "skipping.*damaged" "$tmp/dmg.err")" -ne 2 ]; then fail $name "no warning for each damaged checkpoint: $(head -2 "$tmp/dmg.err" | tr '\n' ' ')"
elif ! grep -q "resumed from .*ckpt-00000008.gguf" "$tmp/dmg.err"; then fail $name "did not resume from the last good checkpoint"
elif ! cmp -s <(cut -d, -f1-3 "$tmp/ref/log.csv") <(cut -d, -f1-3 "$tmp/dmg/log.csv"); then fail $name "losses differ from the uninterrupted run"
elif ! cmp -s "$tmp/ref/model.gguf" "$tmp/dmg/model.gguf"; then fail $name "the model differs from the uninterrupted run's"
else pass $name; fi

# ---- 4: --resume with nothing usable fails and touches nothing
name=resume_without_usable_checkpoint_fails
cp -r "$tmp/ref" "$tmp/gone"
for f in "$tmp"/gone/ckpt-*.gguf; do head -c 3000 "$f" > "$f.x"; mv "$f.x" "$f"; done   # all cut short
md5_before=$(cd "$tmp/gone" && md5sum log.csv model.gguf)
train -o "$tmp/gone" --resume 2>"$tmp/gone.err"; rc1=$?
rm -f "$tmp"/gone/ckpt-*.gguf
train -o "$tmp/gone" --resume 2>>"$tmp/gone.err"; rc2=$?
md5_after=$(cd "$tmp/gone" && md5sum log.csv model.gguf)
if [ $rc1 -eq 0 ] || [ $rc2 -eq 0 ]; then fail $name "exit $rc1 / $rc2: started afresh on top of a finished run"
elif [ "$md5_before" != "$md5_after" ]; then fail $name "log.csv or model.gguf changed"
elif ! grep -q "no usable checkpoint" "$tmp/gone.err"; then fail $name "no reason given: $(tail -1 "$tmp/gone.err")"
else pass $name; fi

# ---- 4: --resume into a folder without a run fails and creates nothing (absent and empty folders)
name=resume_into_no_run_fails
mkdir -p "$tmp/nothing"
train -o "$tmp/absent" --resume 2>"$tmp/nothing.err"; rc1=$?
train -o "$tmp/nothing" --resume 2>>"$tmp/nothing.err"; rc2=$?
if [ $rc1 -eq 0 ] || [ $rc2 -eq 0 ]; then fail $name "exit $rc1 / $rc2: '--resume' started a fresh run"
elif [ -e "$tmp/absent" ] || [ -n "$(ls -A "$tmp/nothing")" ]; then fail $name "files were written: $(ls -A "$tmp/absent" "$tmp/nothing" 2>/dev/null | tr '\n' ' ')"
elif [ "$(grep -c "no checkpoint to resume from" "$tmp/nothing.err")" -ne 2 ]; then fail $name "no reason given: $(tail -1 "$tmp/nothing.err")"
else pass $name; fi

# ---- 4: a fresh run refuses a folder holding an older run; --overwrite starts clean
name=fresh_run_refuses_old_run_folder
cp -r "$tmp/ref" "$tmp/old"
md5_before=$(cd "$tmp/old" && md5sum *)
train -o "$tmp/old" --steps 8 2>"$tmp/old.err"; rc1=$?
md5_after=$(cd "$tmp/old" && md5sum *)
train -o "$tmp/old" --steps 8 --overwrite 2>>"$tmp/old.err"; rc2=$?
ckpts=$(cd "$tmp/old" && ls ckpt-*.gguf | tr '\n' ' ')
train -o "$tmp/old" --steps 8 --resume 2>>"$tmp/old.err"; rc3=$?
if [ $rc1 -eq 0 ]; then fail $name "a fresh run went ahead in a folder holding another run"
elif [ "$md5_before" != "$md5_after" ]; then fail $name "the refused run changed files"
elif [ $rc2 -ne 0 ]; then fail $name "--overwrite failed: $(tail -1 "$tmp/old.err")"
elif [ "$ckpts" != "ckpt-00000004.gguf ckpt-00000008.gguf " ]; then fail $name "after --overwrite the folder holds $ckpts"
elif [ $rc3 -ne 0 ] || ! grep -q "resumed from .*ckpt-00000008" "$tmp/old.err"; then fail $name "--resume did not continue the new run"
elif [ "$(wc -l < "$tmp/old/log.csv")" -ne 9 ]; then fail $name "log.csv has $(wc -l < "$tmp/old/log.csv") lines, expected 9"
else pass $name; fi

# ---- 12: a rejected config leaves no folder behind
name=rejected_run_leaves_no_folder
train -o "$tmp/nofolder" --n_head 3 2>"$tmp/nf.err"; rc=$?
if [ $rc -eq 0 ]; then fail $name "an impossible shape (n_embd 32, n_head 3) trained"
elif [ -e "$tmp/nofolder" ]; then fail $name "the refused run left $tmp/nofolder"
else pass $name; fi

# ---- 12: -t / --threads as in the other subcommands, checked
name=train_threads_flag
train -o "$tmp/th1" -t 1 --steps 2 2>"$tmp/th.err"; rc1=$?
train -o "$tmp/th2" --threads 1 --steps 2 2>>"$tmp/th.err"; rc2=$?
train -o "$tmp/th3" -t many --steps 2 2>>"$tmp/th.err"; rc3=$?
if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ]; then fail $name "-t 1 / --threads 1: exit $rc1 / $rc2: $(head -1 "$tmp/th.err")"
elif [ $rc3 -eq 0 ] || [ -e "$tmp/th3" ]; then fail $name "-t many was accepted"
else pass $name; fi

# ---- 5: the tokenizer
name=train_checks_tokenizer
sed 's/n_vocab = 256/n_vocab = 300/' "$tmp/c.cfg" > "$tmp/c300.cfg"
$D data --bpe 300 -o "$tmp/b" "$tmp/corpus.txt" 2>/dev/null
head -c 30000 "$tmp/corpus.txt" | tr 'a-z' 'A-Z' > "$tmp/other.txt"
$D data --bpe 300 -o "$tmp/o" "$tmp/other.txt" 2>/dev/null
t300() { $D train -c "$tmp/c300.cfg" --data "$tmp/b" --quiet --steps 4 "$@"; }
msg=""
t300 -o "$tmp/tk1" --tokenizer "$tmp/nope.gguf" 2>"$tmp/tk.err" && msg="a missing tokenizer file was accepted"
[ -z "$msg" ] && ! grep -q "nope.gguf" "$tmp/tk.err" && msg="a missing tokenizer gives no message naming it"
[ -z "$msg" ] && t300 -o "$tmp/tk1" 2>"$tmp/tk.err" && msg="BPE shards trained without their tokenizer"
[ -z "$msg" ] && ! grep -q "tokenizer" "$tmp/tk.err" && msg="no reason for refusing BPE shards without --tokenizer"
[ -z "$msg" ] && $D train -c "$tmp/c.cfg" --data "$tmp/b" --quiet --steps 4 -o "$tmp/tk1" --tokenizer "$tmp/b.tokenizer.gguf" 2>"$tmp/tk.err" && msg="a 300-token tokenizer was taken for n_vocab 256"
[ -z "$msg" ] && t300 -o "$tmp/tk1" --tokenizer "$tmp/o.tokenizer.gguf" 2>"$tmp/tk.err" && msg="shards of another tokenizer of the same size were accepted"
[ -z "$msg" ] && [ -e "$tmp/tk1" ] && msg="refused runs left a folder"
[ -z "$msg" ] && { t300 -o "$tmp/tk1" --tokenizer "$tmp/b.tokenizer.gguf" 2>"$tmp/tk.err" || msg="the right tokenizer was refused: $(tail -1 "$tmp/tk.err")"; }
[ -z "$msg" ] && { $D run -m "$tmp/tk1/model.gguf" -p "the king" -n 4 >/dev/null 2>"$tmp/tk.err" || msg="the trained model does not run: $(tail -1 "$tmp/tk.err")"; }
# an interrupted run's checkpoint carries the tokenizer: resuming without --tokenizer keeps it
[ -z "$msg" ] && { $D train --data "$tmp/b" --quiet -o "$tmp/tk1" --resume --steps 8 2>"$tmp/tk.err" || msg="resume without --tokenizer failed: $(tail -1 "$tmp/tk.err")"; }
if [ -z "$msg" ] && [ $have_gguf = 1 ]; then
  msg=$("$PYTHON" - "$tmp/b.tokenizer.gguf" "$tmp/tk1/model.gguf" "$tmp"/tk1/ckpt-00000004.gguf <<'PY'
import sys, gguf
def toks(p):
    f = gguf.GGUFReader(p).fields.get("tokenizer.ggml.tokens")
    return None if f is None else [bytes(f.parts[i]) for i in f.data]
want = toks(sys.argv[1])
for p in sys.argv[2:]:
    if toks(p) != want: print(f"{p} does not carry the tokenizer's tokens")
if any(k.startswith("train.") for k in gguf.GGUFReader(sys.argv[2]).fields):
    print("the model took the checkpoint's training keys along with its tokenizer")
PY
)
fi
if [ -n "$msg" ]; then fail $name "$msg"; else pass $name; fi

# ---- 9: empty input to deepseek data
name=data_refuses_empty_input
: > "$tmp/empty.txt"
$D data --bpe 1024 -o "$tmp/e" "$tmp/empty.txt" 2>"$tmp/empty.err"; rc=$?
if [ $rc -eq 0 ]; then fail $name "exit 0 for empty input"
elif ls "$tmp"/e.* >/dev/null 2>&1; then fail $name "files were written: $(ls "$tmp"/e.*)"
elif [ "$(wc -l < "$tmp/empty.err")" -ne 1 ]; then fail $name "not a one-line reason"
else pass $name; fi

# ---- 10: SIGINT writes a checkpoint, exits 130, and the resumed run equals an uninterrupted one
name=sigint_checkpoints_and_resumes
long() { $D train -c "$tmp/c.cfg" --data "$tmp/d" --quiet --steps 3000 --checkpoint_every 2000 --eval_every 2000 --lr 1e-3 "$@"; }
long -o "$tmp/lref" 2>/dev/null
( exec $D train -c "$tmp/c.cfg" --data "$tmp/d" --quiet --steps 3000 --checkpoint_every 2000 --eval_every 2000 --lr 1e-3 -o "$tmp/int" ) 2>"$tmp/int.err" &
pid=$!
for i in $(seq 1 200); do   # signal once the run is under way
  [ -f "$tmp/int/log.csv" ] && [ "$(wc -l < "$tmp/int/log.csv")" -gt 20 ] && break
  sleep 0.02
done
kill -INT $pid 2>/dev/null; wait $pid; rc=$?
last=$(tail -1 "$tmp/int/log.csv" | cut -d, -f1)
newest=$(ls "$tmp"/int/ckpt-*.gguf 2>/dev/null | tail -1)
long -o "$tmp/int" --resume 2>>"$tmp/int.err"; rc2=$?
if [ $rc -eq 0 ] && [ "$last" = 3000 ]; then echo "SKIP $name: the run finished before the signal"
elif [ $rc -ne 130 ]; then fail $name "exit $rc, expected 130"
elif [ "$newest" != "$(printf "%s/int/ckpt-%08d.gguf" "$tmp" "$last")" ]; then fail $name "no checkpoint at the interrupted step $last (newest: $newest)"
elif [ $rc2 -ne 0 ]; then fail $name "the resume failed: $(tail -1 "$tmp/int.err")"
elif ! cmp -s <(cut -d, -f1-3 "$tmp/lref/log.csv") <(cut -d, -f1-3 "$tmp/int/log.csv"); then fail $name "losses differ from the uninterrupted run"
elif ! cmp -s "$tmp/lref/model.gguf" "$tmp/int/model.gguf"; then fail $name "the model differs from the uninterrupted run's"
else pass $name "stopped at step $last"; fi

# ---- a full disk (file-size limit) during a checkpoint write: stops cleanly, loses nothing
name=full_disk_during_checkpoint
train -o "$tmp/fd" --steps 8 2>/dev/null
train -o "$tmp/fdref" --steps 8 2>/dev/null
train -o "$tmp/fdref" --steps 16 --resume 2>/dev/null
cp "$tmp/fd/model.gguf" "$tmp/fd.model"; cp "$tmp/fd/ckpt-00000008.gguf" "$tmp/fd.ckpt"
limit=$(( $(stat -c %s "$tmp/fd.ckpt") / 1024 / 2 ))   # KiB: half a checkpoint
( trap '' XFSZ; ulimit -f $limit; exec $D train -c "$tmp/c.cfg" --data "$tmp/d" --quiet -o "$tmp/fd" --steps 16 --resume ) 2>"$tmp/fd.err"; rc=$?
msg=""
[ $rc -eq 0 ] && msg="exit 0 although the checkpoint could not be written"
[ -z "$msg" ] && ! grep -qi "checkpoint" "$tmp/fd.err" && msg="no reason given: $(tail -1 "$tmp/fd.err")"
[ -z "$msg" ] && ls "$tmp"/fd/*.tmp >/dev/null 2>&1 && msg="a partial file was left: $(ls "$tmp"/fd/*.tmp)"
[ -z "$msg" ] && ! cmp -s "$tmp/fd.ckpt" "$tmp/fd/ckpt-00000008.gguf" && msg="the last good checkpoint changed"
[ -z "$msg" ] && ! cmp -s "$tmp/fd.model" "$tmp/fd/model.gguf" && msg="the model changed"
[ -z "$msg" ] && msg=$(check_gguf "$tmp"/fd/*.gguf)
[ -z "$msg" ] && { train -o "$tmp/fd" --steps 16 --resume 2>"$tmp/fd.err" || msg="resuming with room again failed: $(tail -1 "$tmp/fd.err")"; }
[ -z "$msg" ] && ! cmp -s "$tmp/fdref/model.gguf" "$tmp/fd/model.gguf" && msg="after the full disk the final model differs from an undisturbed run's"
if [ -n "$msg" ]; then fail $name "$msg"; else pass $name "$(grep -o 'File too large\|No space left on device' "$tmp/fd.err" | head -1)"; fi
