#!/usr/bin/env bash
# Short libFuzzer run of the training parsers (tests/fuzz_train.c: config text and token shard
# headers) from a seed corpus: a config file and a small shard. FUZZ_SECONDS (default 20).
cd "$(dirname "$0")/.."
. tests/fuzz_lib.sh
fuzz_build fuzz_train
{ printf '\001'; cat examples/shakespeare-tiny.cfg; printf 'layer.2.attn = mla\nlayers.ffn = dense\n'; } > "$work/seeds/config"
# a shard: selector byte 0, then header (magic, version 1, 2 bytes per token, vocab 300, count 4) and tokens
printf '\000DSTK\001\000\000\000\002\000\000\000\054\001\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\001\000\002\000\003\000\053\001' > "$work/seeds/shard"
fuzz_run fuzz_train 4096
