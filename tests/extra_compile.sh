#!/usr/bin/env bash
# Every header compiles warning-free as C99 and as C++ with gcc and clang, implementation included.
cd "$(dirname "$0")/.."
tu=$(mktemp --suffix=.c)
for h in deepseek.h; do
  printf '#define DEEPSEEK_IMPLEMENTATION\n#include "%s"\n' "$h" > "$tu"
  for cc in "gcc -std=c99" "clang -std=c99" "g++ -x c++ -std=c++11" "clang++ -x c++ -std=c++11"; do
    bin=${cc%% *}
    name="compile_${h%.h}_$(echo "$cc" | tr -c 'a-z0-9+\n' '_' | tr '+' 'p')"
    if ! command -v "$bin" >/dev/null; then echo "SKIP $name: $bin not installed"; continue; fi
    if out=$($cc -I. -Wall -Wextra -Wpedantic -Werror -fsyntax-only "$tu" 2>&1); then echo "PASS $name"
    else echo "FAIL $name: $(echo "$out" | head -3 | tr '\n' ' ')"; fi
  done
done
rm -f "$tu"
