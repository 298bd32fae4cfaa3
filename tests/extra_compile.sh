#!/usr/bin/env bash
# Every header compiles warning-free as C99 and as C++ with gcc and clang, implementation included,
# in full and with each feature-exclusion macro; a build with all of them runs the inference tests.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
tu=$(mktemp --suffix=.c)
configs=("" "-DDS_NO_TRAIN" "-DDS_NO_TOKENIZER_TRAIN" "-DDS_NO_DEEPSEEK2" "-DDS_NO_TRAIN -DDS_NO_TOKENIZER_TRAIN -DDS_NO_DEEPSEEK2")
for h in deepseek.h; do
  printf '#define DEEPSEEK_IMPLEMENTATION\n#include "%s"\n' "$h" > "$tu"
  for defs in "${configs[@]}"; do
    for cc in "gcc -std=c99" "clang -std=c99" "g++ -x c++ -std=c++11" "clang++ -x c++ -std=c++11"; do
      bin=${cc%% *}
      name="compile_${h%.h}_$(echo "$cc $defs" | tr -c 'a-zA-Z0-9+\n' '_' | tr '+' 'p')"
      if ! command -v "$bin" >/dev/null; then echo "SKIP $name: $bin not installed"; continue; fi
      # shellcheck disable=SC2086
      if out=$($cc $defs -I. -Wall -Wextra -Wpedantic -Werror -fsyntax-only "$tu" 2>&1); then echo "PASS $name"
      else echo "FAIL $name: $(echo "$out" | head -3 | tr '\n' ' ')"; fi
    done
  done
done
rm -f "$tu"
# the smallest build (what a game that only runs a model compiles) still runs models
mkdir -p "$BUILD/minimal"
min="-DDS_NO_TRAIN -DDS_NO_TOKENIZER_TRAIN -DDS_NO_DEEPSEEK2"
for t in test_infer test_infer_sampler; do
  # shellcheck disable=SC2086
  if out=$(${CC:-cc} -std=c99 $min -Wall -Wextra -Wpedantic -Werror -O2 -I. -o "$BUILD/minimal/$t" "tests/$t.c" -lm -lpthread 2>&1); then
    "$BUILD/minimal/$t" 2>/dev/null | sed -E 's/^(PASS|FAIL|SKIP) /\1 minimal_build: /'
  else
    echo "FAIL minimal_build_$t: $(echo "$out" | head -3 | tr '\n' ' ')"
  fi
done
