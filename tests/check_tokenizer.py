#!/usr/bin/env python3
"""Token-id parity of `deepseek tokenize` with Hugging Face `tokenizers` on a ~6 MB corpus.

The corpus is made at test time from a seed (see corpus()): tinyshakespeare ($DS_TEST_DATA),
Python standard library sources, numbers and dates, text in many scripts drawn from Unicode
ranges, emoji and ZWJ sequences, every code point of Unicode once, whitespace and newline
runs, control characters, special tokens, and invalid UTF-8 (which the reference reads as a
lossy decode does). Reference tokenizers, all built from SmolLM2's vocabulary and merges:
  smollm-gguf   the GGUF itself (ours) vs Digits + ByteLevel (SmolLM2's tokenizer.json)
  gpt2, llama3, qwen2, deepseek-v3, smollm   a tokenizer.json that `tokenizers` wrote with
                that family's exact pre-tokenizer (Llama-3 with ignore_merges)
Checks: identical ids on every part, and decode(encode(x)) == x on every valid UTF-8 part.
Prints PASS/FAIL/SKIP lines."""
import os
import random
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261129

PAT_LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PAT_QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PAT_DSV3 = ["\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]


def model_path():
    return os.environ.get("DS_TEST_MODEL", os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))


def words(rng, ranges, n, lo=1, hi=8):
    out = []
    for _ in range(n):
        a, b = rng.choice(ranges)
        out.append("".join(chr(rng.randint(a, b)) for _ in range(rng.randint(lo, hi))))
    return out


def mixed_text(rng, ranges, n_words, seps=(" ", " ", " ", ", ", ". ", "\n", "  ", "\t", "")):
    return "".join(w + rng.choice(seps) for w in words(rng, ranges, n_words))


def corpus(size_scale=1.0):
    """[(name, bytes)] deterministic for a given seed, scale and inputs; the English and code
    parts shrink with the scale too"""
    rng = random.Random(SEED)
    parts = []
    data = os.environ.get("DS_TEST_DATA", os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt"))
    if os.path.exists(data):
        eng = open(data, "rb").read()
        parts.append(("english", eng[:int(len(eng) * size_scale)]))
    else:
        parts.append(("english", ("The quick brown fox jumps over the lazy dog. It's John's; we'll see, they'd say.\n" * 12000).encode()))
    src, total = [], 0
    libdir = sysconfig.get_paths()["stdlib"]
    for name in sorted(os.listdir(libdir)):
        if name.endswith(".py") and total < 1_200_000 * size_scale:
            b = open(os.path.join(libdir, name), "rb").read()
            src.append(b)
            total += len(b)
    parts.append(("code", b"".join(src)))
    nums = []
    for _ in range(int(40000 * size_scale)):
        k = rng.randrange(6)
        if k == 0: nums.append(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        elif k == 1: nums.append(f"{rng.random() * 10 ** rng.randint(0, 12):.{rng.randint(0, 6)}f}")
        elif k == 2: nums.append(str(rng.getrandbits(rng.randint(1, 90))))
        elif k == 3: nums.append(f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
        elif k == 4: nums.append(f"${rng.randint(0, 99999):,}.{rng.randint(0, 99):02d}")
        else: nums.append("".join(rng.choice("0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९²³½Ⅻ①") for _ in range(rng.randint(1, 12))))
    parts.append(("numbers", " ".join(nums).encode()))
    scripts = {
        "chinese": [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x3000, 0x303F), (0xFF01, 0xFF5E)],
        "japanese": [(0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FA5), (0xFF65, 0xFF9F)],
        "korean": [(0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F)],
        "arabic": [(0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF)],
        "hindi": [(0x0900, 0x097F), (0x0980, 0x09FF)],
        "latin-greek-cyrillic": [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x1E00, 0x1EFF)],
    }
    for name, ranges in scripts.items():
        parts.append((name, mixed_text(rng, ranges, int(60000 * size_scale)).encode()))
    emoji_base = [chr(c) for c in list(range(0x1F300, 0x1F5FF)) + list(range(0x1F600, 0x1F64F)) + list(range(0x1F900, 0x1F9FF))]
    em = []
    for _ in range(int(40000 * size_scale)):
        e = rng.choice(emoji_base)
        if rng.random() < 0.3: e += chr(rng.randint(0x1F3FB, 0x1F3FF))
        if rng.random() < 0.3: e += "\u200d" + rng.choice(emoji_base) + rng.choice(["", "\ufe0f"])
        if rng.random() < 0.1: e = rng.choice(["🇫🇷", "🇯🇵", "👨‍👩‍👧‍👦", "🏳️‍🌈", "1️⃣", "#️⃣"])
        em.append(e + rng.choice(["", " ", "  ", "word", " text ", "\n", "!"]))
    parts.append(("emoji", "".join(em).encode()))
    mixed_ranges = [r for rs in scripts.values() for r in rs] + [(0x300, 0x36F), (0x20, 0x7E), (0x1F600, 0x1F64F)]
    parts.append(("mixed", mixed_text(rng, mixed_ranges, int(80000 * size_scale), seps=(" ", "", "'s ", "'LL ", "’", "-", "\u00a0", "\u3000", "\r\n", "\n\n", "  ")).encode()))
    ws = []
    for _ in range(int(30000 * size_scale)):
        ws.append("".join(rng.choice(" \t\n\r\u00a0\u2028\u3000\u000b\u000c\u0085\u2003") for _ in range(rng.randint(1, 12))))
        ws.append(rng.choice(["word", "Word", "1", "12345", "!", "?!", "'s", "\u00e9t\u00e9", "中文", "x", "\u0301", ""]))
    parts.append(("whitespace", "".join(ws).encode()))
    ctl = "".join(chr(rng.choice(list(range(0, 32)) + [0x7F, 0x85, 0xAD, 0x200B, 0x200E, 0xFEFF, 0x2060])) + rng.choice(["", "a", " ", "1", "'"]) for _ in range(int(60000 * size_scale)))
    parts.append(("controls", ctl.encode()))
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    rng.shuffle(cps)
    seps = [" ", "", "a", "1", "'", "\n", " '", "'s", "-", "\u3042"]
    allcp = []
    for i in range(0, len(cps), 3):
        allcp.append("".join(chr(c) for c in cps[i:i + rng.randint(1, 3)]) + rng.choice(seps))
    parts.append(("every-code-point", "".join(allcp).encode()))
    special = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<|im_start", "im_end|>", "<<|im_end|>>"]
    parts.append(("special", mixed_text(rng, [(0x20, 0x7E), (0x4E00, 0x4E50)], int(20000 * size_scale), seps=special + [" ", "\n"]).encode()))
    bad = []
    for _ in range(int(20000 * size_scale)):
        bad.append(rng.choice([b"\xff", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b"\xf8"]))
        bad.append(rng.choice([b"abc", b" ", b"\xc3\xa9", b"\xe4\xb8\xad", b"1", b"\n", b""]))
    parts.append(("invalid-utf8", b"".join(bad)))
    return parts


def hf_tokenizers(tmp):
    """{name: (our tokenizer path, HF Tokenizer)}"""
    import gguf
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers as P
    r = gguf.GGUFReader(model_path())
    f = r.fields["tokenizer.ggml.tokens"]
    toks = [bytes(f.parts[i]).decode() for i in f.data]
    f = r.fields["tokenizer.ggml.merges"]
    merges = [tuple(bytes(f.parts[i]).decode().split(" ")) for i in f.data]
    f = r.fields["tokenizer.ggml.token_type"]
    special = [toks[i] for i, d in enumerate(f.data) if int(f.parts[d][0]) == 3]
    vocab = {t: i for i, t in enumerate(toks)}
    pres = {
        "smollm": P.Sequence([P.Digits(individual_digits=True), P.ByteLevel(add_prefix_space=False, use_regex=True)]),
        "gpt2": P.ByteLevel(add_prefix_space=False, use_regex=True),
        "llama3": P.Sequence([P.Split(Regex(PAT_LLAMA3), "isolated"), P.ByteLevel(add_prefix_space=False, use_regex=False)]),
        "qwen2": P.Sequence([P.Split(Regex(PAT_QWEN2), "isolated"), P.ByteLevel(add_prefix_space=False, use_regex=False)]),
        "deepseek-v3": P.Sequence([P.Split(Regex(p), "isolated") for p in PAT_DSV3] + [P.ByteLevel(add_prefix_space=False, use_regex=False)]),
    }
    out = {}
    for name, pre in pres.items():
        tk = Tokenizer(models.BPE(vocab, merges, ignore_merges=(name == "llama3")))
        tk.pre_tokenizer = pre
        tk.decoder = decoders.ByteLevel()
        tk.add_special_tokens(special)
        path = os.path.join(tmp, name + ".json")
        tk.save(path)
        out[name] = (path, tk)
        if name == "smollm":
            out["smollm-gguf"] = (model_path(), tk)
    return out


def ensure_cli():
    exe = os.path.join(ROOT, "deepseek")
    if not os.path.exists(exe):
        subprocess.run(["make", "-s", "deepseek"], cwd=ROOT, check=True)
    return exe


def byte_chars():
    """GPT-2's byte -> printable character map"""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def start(exe, tok, path, *extra):
    return subprocess.Popen([exe, "tokenize", "--tokenizer", tok, "-f", path, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc):
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(err.decode(errors="replace"))
    return out


def check_one(exe, tname, tpath, hf, files):
    """(parts that differ, first difference); ours runs while the reference encodes"""
    vocab = hf.get_vocab()
    missing = {b for b, c in byte_chars().items() if c not in vocab}
    mism, first = 0, ""
    for name, p, data in files:
        proc = start(exe, tpath, p, "--ids")
        want = hf.encode(data.decode("utf-8", errors="replace")).ids
        got = [int(x) for x in finish(proc).split()]
        if got != want:
            mism += 1
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            first = first or f"{name}: first difference at id {i}: ours {got[i:i + 8]} HF {want[i:i + 8]} (text near {hf.decode(want[max(0, i - 5):i + 5])!r})"
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        ids_path = p + "." + tname + ".ids"
        open(ids_path, "w").write(" ".join(map(str, got)))
        back = finish(start(exe, tpath, ids_path, "--decode"))
        # a byte whose symbol the vocabulary lacks cannot come back (SmolLM2 lacks 29)
        if back != bytes(b for b in data if b not in missing):
            mism += 1
            first = first or f"{name}: decode(encode(x)) != x"
    return mism, first


def byte_ends(text, pieces):
    """HF pre-tokenizer offsets (characters) -> piece end offsets in UTF-8 bytes"""
    pos, acc = [0], 0
    for ch in text:
        acc += len(ch.encode("utf-8", errors="surrogatepass"))
        pos.append(acc)
    return [pos[end] for _, (_, end) in pieces]


def check_pieces(exe, tname, tpath, hf, files):
    """(parts whose pieces differ, first difference), with added tokens not matched"""
    mism, first = 0, ""
    for name, p, data in files:
        proc = start(exe, tpath, p, "--pieces", "--no-special")
        text = data.decode("utf-8", errors="replace")
        want = byte_ends(text, hf.pre_tokenizer.pre_tokenize_str(text))
        got = [int(x) for x in finish(proc).split()]
        if got != want:
            mism += 1
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            clean = text.encode()
            first = first or f"{name}: piece {i} ends at {got[i:i + 1]} for us, {want[i:i + 1]} for HF (text {clean[max(0, want[i] - 12):want[i] + 12]!r})"
    return mism, first


def main():
    try:
        import tokenizers  # noqa: F401
        import gguf  # noqa: F401
    except ImportError as e:
        print(f"SKIP tokenizer_parity: {e}")
        return 0
    if not os.path.exists(model_path()):
        print("SKIP tokenizer_parity: the SmolLM2 model is missing (make model)")
        return 0
    exe = ensure_cli()
    # the full corpus (14 MB) with DS_TOKENIZER_FULL=1; by default (about 2 minutes) the parts
    # at 15 %, and the every-code-point part only for the three distinct scanners
    full = bool(os.environ.get("DS_TOKENIZER_FULL"))
    parts = corpus(1.0 if full else 0.15)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, data in parts:
            p = os.path.join(tmp, name + ".txt")
            open(p, "wb").write(data)
            files.append((name, p, data))
        for tname, (tpath, hf) in hf_tokenizers(tmp).items():
            if tname != "smollm-gguf":
                mism, first = check_pieces(exe, tname, tpath, hf, files)
                print(f"FAIL tokenizer_pieces_{tname}: {mism} parts differ; {first}" if mism else f"PASS tokenizer_pieces_{tname} (pre-tokenizer pieces equal on {len(files)} parts)")
                bad += mism > 0
            mine = [f for f in files if full or f[0] != "every-code-point" or tname in ("smollm-gguf", "llama3", "deepseek-v3")]
            total = sum(len(f[2]) for f in mine)
            mism, first = check_one(exe, tname, tpath, hf, mine)
            if mism:
                bad += 1
                print(f"FAIL tokenizer_parity_{tname}: {mism} of {len(mine)} parts differ; {first}")
            else:
                print(f"PASS tokenizer_parity_{tname} ({total / 1e6:.1f} MB, {len(mine)} parts, ids equal, round trip exact)")
            sys.stdout.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
