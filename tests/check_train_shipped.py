#!/usr/bin/env python3
# needs: numpy
"""The shipped model (examples/shakespeare-tiny.gguf, trained by deepseek train) loads in llama.cpp
(llama-cpp-python) and has learned its corpus: its mean negative log-likelihood on Shakespeare's
text, measured by llama.cpp, is far below a uniform guess over its 1024-token vocabulary
(ln 1024 = 6.93 nats); the training run's validation loss was 4.14."""
import os, sys
import numpy as np

model = "examples/shakespeare-tiny.gguf"
text = ("ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
        "Arise, fair sun, and kill the envious moon,\nWho is already sick and pale with grief,\n")


def main():
    name = "check_train_shipped_model"
    if not os.path.exists(model):
        print(f"SKIP {name}: {model} is missing")
        return 0
    try:
        from llama_cpp import Llama
    except Exception as e:  # pragma: no cover
        print(f"SKIP {name}: {e}")
        return 0
    llm = Llama(model_path=model, n_ctx=256, logits_all=True, verbose=False, n_threads=1)
    ids = llm.tokenize(text.encode(), add_bos=False)
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    lp = logits - logits.max(-1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    nll = -np.mean([lp[i, ids[i + 1]] for i in range(len(ids) - 1)])
    if nll < 5.0:
        print(f"PASS {name} (llama.cpp: {nll:.3f} nats/token over {len(ids)} tokens; uniform would be 6.93)")
        return 0
    print(f"FAIL {name}: llama.cpp measures {nll:.3f} nats/token on Shakespeare (expected < 5.0)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
