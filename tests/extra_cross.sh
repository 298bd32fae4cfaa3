#!/usr/bin/env bash
# Portability: the kernel, dtype and inference tests cross-compiled for arm64 (static) and run under
# qemu-user, once for baseline NEON and once with the dot-product extension; the header and the
# tests built with the MinGW-w64 cross-compiler (Windows code paths, warning-free).
# Install the tools with: apt-get install -y gcc-aarch64-linux-gnu qemu-user gcc-mingw-w64-x86-64
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=$BUILD/cross
mkdir -p "$out"
warn="-Wall -Wextra -Wpedantic -Werror"

run_arm() { # name, extra flags, qemu cpu
  local name=$1 flags=$2 cpu=$3 t bin res
  for t in kernels dtype infer; do
    bin=$out/test_${t}_$name
    if ! res=$(aarch64-linux-gnu-gcc -std=c99 -O2 $warn $flags -static -I. -o "$bin" tests/test_$t.c -lm -lpthread 2>&1); then
      echo "FAIL cross_arm64_${name}_$t: does not compile: $(echo "$res" | head -3 | tr '\n' ' ')"; continue
    fi
    if res=$(qemu-aarch64 -cpu "$cpu" "$bin" 2>&1) && ! grep -q '^FAIL' <<< "$res"; then
      echo "PASS cross_arm64_${name}_$t ($(grep -c '^PASS' <<< "$res") cases under qemu)"
    else
      echo "FAIL cross_arm64_${name}_$t: $(grep -m3 '^FAIL' <<< "$res" | tr '\n' ' ')"
    fi
  done
}

if ! command -v aarch64-linux-gnu-gcc >/dev/null; then echo "SKIP cross_arm64: aarch64-linux-gnu-gcc not installed"
elif ! command -v qemu-aarch64 >/dev/null; then echo "SKIP cross_arm64: qemu-aarch64 (qemu-user) not installed"
else
  run_arm neon "" cortex-a57
  run_arm neon_dotprod "-march=armv8.2-a+dotprod" max
fi

if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then echo "SKIP cross_mingw: x86_64-w64-mingw32-gcc not installed"
else
  for t in kernels dtype; do
    if res=$(x86_64-w64-mingw32-gcc -std=c99 -O2 $warn -I. -o "$out/test_$t.exe" tests/test_$t.c 2>&1); then echo "PASS cross_mingw_test_$t"
    else echo "FAIL cross_mingw_test_$t: $(echo "$res" | head -3 | tr '\n' ' ')"; fi
  done
fi
