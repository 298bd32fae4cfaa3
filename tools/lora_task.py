#!/usr/bin/env python3
"""lora_task.py - a generated fine-tuning task and its exact-match score.

  gen   DIR [--train N] [--eval N] [--seed S]
        writes DIR/train.jsonl, DIR/eval.jsonl (chat examples for `deepseek finetune`) and
        DIR/heldout.jsonl (questions and answers never seen in training): convert a date
        written as YYYY-MM-DD into the form "the 5th of March, 2024" (ordinal day, month name).
  score MODEL.gguf DIR/heldout.jsonl [--lora ADAPTER.gguf] [--threads N] [--limit N]
        greedy answers through llama.cpp (llama-cpp-python, its own loader and LoRA code: an
        independent check that our adapter files load and do what we trained), and the share
        that equals the expected answer exactly.
"""
import argparse, datetime, json, os, random, sys

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]


def ordinal(n):
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def example(r):
    d = datetime.date(1900, 1, 1) + datetime.timedelta(days=r.randrange(0, 200 * 365))
    q = f"Rewrite the date {d.isoformat()} in words, like: the 1st of January, 2000. Answer with the date only."
    a = f"the {ordinal(d.day)} of {MONTHS[d.month - 1]}, {d.year}"
    return q, a


def gen(args):
    r = random.Random(args.seed)
    seen = set()
    def unique(n):
        out = []
        while len(out) < n:
            q, a = example(r)
            if q not in seen:
                seen.add(q)
                out.append((q, a))
        return out
    os.makedirs(args.dir, exist_ok=True)
    for name, n in (("train", args.train), ("eval", args.eval)):
        with open(f"{args.dir}/{name}.jsonl", "w") as f:
            for q, a in unique(n):
                f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    with open(f"{args.dir}/heldout.jsonl", "w") as f:
        for q, a in unique(args.heldout):
            f.write(json.dumps({"question": q, "answer": a}) + "\n")


def score(args):
    from llama_cpp import Llama
    kw = dict(model_path=args.model, n_ctx=512, n_threads=args.threads, verbose=False, seed=0)
    if args.lora:
        kw["lora_path"] = args.lora
    llm = Llama(**kw)
    rows = [json.loads(l) for l in open(args.heldout) if l.strip()][: args.limit]
    hits = 0
    for i, row in enumerate(rows):
        out = llm.create_chat_completion(messages=[{"role": "user", "content": row["question"]}], temperature=0.0, max_tokens=24)
        got = out["choices"][0]["message"]["content"].strip()
        hits += got == row["answer"]
        if i < 3:
            print(f"  {row['question']!r} -> {got!r} (expected {row['answer']!r})", file=sys.stderr)
    print(f"exact match {hits}/{len(rows)} = {100.0 * hits / max(1, len(rows)):.1f}%" + (f" with {args.lora}" if args.lora else " (base)"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--train", type=int, default=400)
    g.add_argument("--eval", type=int, default=40)
    g.add_argument("--heldout", type=int, default=100)
    g.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("score")
    s.add_argument("model")
    s.add_argument("heldout")
    s.add_argument("--lora")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--limit", type=int, default=100)
    args = p.parse_args()
    gen(args) if args.cmd == "gen" else score(args)


if __name__ == "__main__":
    main()
