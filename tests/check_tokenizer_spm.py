#!/usr/bin/env python3
"""SentencePiece-style BPE (the Llama-2 family: "▁" for spaces, score-ordered merges, <0xXX>
byte fallback) read from GGUF, against llama.cpp (the llama_cpp package) on the same file; and
a tokenizer.json with the Metaspace pre-tokenizer (split into words or not) against `tokenizers`.

The vocabulary: `tokenizers`' SentencePieceBPETokenizer trained here on English and mixed-script
text (a small alphabet, so byte fallback happens), written as a vocab-only GGUF with the gguf
package: <unk> <s> </s>, the 256 byte tokens, then the trained tokens scored by merge order.
Prints PASS/FAIL/SKIP lines."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_tokenizer as ct  # noqa: E402


def build_gguf(path, train_file):
    import gguf
    from tokenizers import SentencePieceBPETokenizer
    sp = SentencePieceBPETokenizer()
    sp.train([train_file], vocab_size=3000, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=300, show_progress=False)
    vocab = sp.get_vocab()
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in __import__("json").loads(sp.to_str())["model"]["merges"]]
    rank = {a + b: i for i, (a, b) in enumerate(merges)}
    trained = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in ("<unk>", "<s>", "</s>")]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + trained
    types = [2, 3, 3] + [6] * 256 + [1] * len(trained)
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(rank.get(t, 1_000_000)) for t in trained]
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(256)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_metaspace(exe, tmp, train, parts):
    """HF SentencePieceBPETokenizer (its NFKC normalizer removed) as tokenizer.json, both ways"""
    import json
    from tokenizers import SentencePieceBPETokenizer, Tokenizer
    sp = SentencePieceBPETokenizer()
    sp.train([train], vocab_size=2000, show_progress=False, limit_alphabet=200)
    sp._tokenizer.normalizer = None
    base = os.path.join(tmp, "metaspace.json")
    sp.save(base)
    bad = []
    for split in (True, False):
        doc = json.load(open(base, encoding="utf-8"))
        doc["pre_tokenizer"]["split"] = split
        path = os.path.join(tmp, f"metaspace_{split}.json")
        json.dump(doc, open(path, "w", encoding="utf-8"))
        hf = Tokenizer.from_file(path)
        for name in ["english", "code", "mixed", "chinese", "whitespace", "controls", "numbers"]:
            text = parts[name].decode("utf-8", errors="replace")
            p = os.path.join(tmp, name + ".ms.txt")
            open(p, "wb").write(text.encode())
            if [int(x) for x in ct.finish(ct.start(exe, path, p, "--ids")).split()] != hf.encode(text).ids:
                bad.append(f"{name} (split={split})")
    return bad


def main():
    try:
        import gguf  # noqa: F401
        import llama_cpp
        import tokenizers  # noqa: F401
    except ImportError as e:
        print(f"SKIP tokenizer_spm: {e}")
        return 0
    exe = ct.ensure_cli()
    parts = dict(ct.corpus(0.05))
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.txt")
        open(train, "wb").write(parts["english"][:300_000] + parts["mixed"][:100_000] + parts["code"][:100_000])
        model = os.path.join(tmp, "spm.gguf")
        build_gguf(model, train)
        ref = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
        bad, first, total = 0, "", 0
        names = ["english", "code", "mixed", "chinese", "emoji", "whitespace", "controls", "numbers", "invalid-utf8"]
        for name in names:
            data = parts[name]
            # llama.cpp reads the text as UTF-8 with U+FFFD for bad sequences, as we do
            text = data.decode("utf-8", errors="replace").encode()
            # llama.cpp splits on NUL (C strings): keep the comparison to what both can see
            text = text.replace(b"\x00", b"")
            p = os.path.join(tmp, name + ".txt")
            open(p, "wb").write(text)
            total += len(text)
            want = ref.tokenize(text, add_bos=False, special=False)
            got = [int(x) for x in ct.finish(ct.start(exe, model, p, "--ids", "--no-special")).split()]
            if got != want:
                bad += 1
                i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
                first = first or f"{name}: first difference at {i}: ours {got[i:i + 6]} llama.cpp {want[i:i + 6]}"
                continue
            ids = os.path.join(tmp, name + ".ids")
            open(ids, "w").write(" ".join(map(str, got)))
            back = ct.finish(ct.start(exe, model, ids, "--decode"))
            if back != text:
                bad += 1
                first = first or f"{name}: decode(encode(x)) != x"
        rc = 0
        if bad:
            print(f"FAIL tokenizer_spm_llama_cpp: {bad} of {len(names)} parts differ; {first}")
            rc = 1
        else:
            print(f"PASS tokenizer_spm_llama_cpp ({total / 1e6:.1f} MB, {len(names)} parts, ids equal to llama.cpp, round trip exact)")
        open(train, "wb").write(open(train, "rb").read().decode("utf-8", errors="replace").encode())
        ms = check_metaspace(exe, tmp, train, parts)
        if ms:
            print(f"FAIL tokenizer_spm_metaspace_json: ids differ from tokenizers on {', '.join(ms)}")
            rc = 1
        else:
            print("PASS tokenizer_spm_metaspace_json (Metaspace tokenizer.json, split and not, ids equal to tokenizers on 7 parts)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
