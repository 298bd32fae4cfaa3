"""The logits fixture record of the tiny-model checks (check_qwen2.py, check_deepseek2.py and the
make_ref_* scripts), the layout tests/logits_record.h reads and writes in C:
magic (8 bytes) | u64 model hash | u32 n_pos | u32 n_vocab | i32 tokens[n_pos] |
f32 logits[n_pos][n_vocab] (absent in a token-only record), little-endian."""
import struct

import numpy as np


def read_record(path, magic):
    """(hash, tokens, logits or None) of a file in the fixture's layout."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != magic:
        raise ValueError(f"{path}: bad magic")
    h, n_pos, n_vocab = struct.unpack_from("<QII", data, 8)
    tokens = np.frombuffer(data, "<i4", n_pos, 24)
    rest = len(data) - 24 - 4 * n_pos
    logits = np.frombuffer(data, "<f4", n_pos * n_vocab, 24 + 4 * n_pos).reshape(n_pos, n_vocab) if rest else None
    return h, tokens, logits


def write_record(path, magic, h, tokens, logits):
    with open(path, "wb") as f:
        f.write(magic + struct.pack("<QII", h, logits.shape[0], logits.shape[1]))
        f.write(np.asarray(tokens, "<i4").tobytes() + np.asarray(logits, "<f4").tobytes())
