#!/usr/bin/env bash
# Runs every test program and the reference checks, and sums their PASS/FAIL/SKIP lines.
# Environment: BUILD (build folder), DS_TEST_NO_SAN=1 skips the sanitizer pass,
# DS_TEST_NO_EXTRA=1 skips the compile checks and fuzz runs.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
export DS_TEST_MODEL=${DS_TEST_MODEL:-$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf}
export DS_TEST_DATA=${DS_TEST_DATA:-$PWD/../shared/data/tinyshakespeare.txt}
log=$BUILD/test.log
mkdir -p "$BUILD"
: > "$log"
pass=0; fail=0; skip=0

count() { # prefix, then a program's output on stdin
  local prefix=$1 line
  while IFS= read -r line; do
    echo "$line" >> "$log"
    case "$line" in
      "PASS "*) pass=$((pass+1)); echo "$prefix$line" ;;
      "FAIL "*) fail=$((fail+1)); echo "$prefix$line" ;;
      "SKIP "*) skip=$((skip+1)); echo "$prefix$line" ;;
    esac
  done
}

run_prog() { # prefix program
  local prefix=$1 prog=$2 out rc
  out=$("$prog" 2>>"$log"); rc=$?
  count "$prefix" <<< "$out"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<< "$out"; then
    fail=$((fail+1)); echo "${prefix}FAIL $(basename "$prog"): exited with status $rc (see $log)"
  fi
}

for t in "$BUILD"/test_*; do
  [ -x "$t" ] && run_prog "" "$t"
done
if [ -z "${DS_TEST_NO_SAN:-}" ]; then
  for t in "$BUILD"/san/test_*; do
    [ -x "$t" ] && DS_TEST_SANITIZED=1 run_prog "asan+ubsan: " "$t"
  done
fi
for py in tests/check_*.py; do
  [ -f "$py" ] || continue
  out=$(BUILD=$BUILD "$PYTHON" "$py" 2>>"$log"); rc=$?
  count "" <<< "$out"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<< "$out"; then
    fail=$((fail+1)); echo "FAIL $(basename "$py"): exited with status $rc (see $log)"
  fi
done
if [ -z "${DS_TEST_NO_EXTRA:-}" ]; then
  for extra in tests/extra_*.sh; do
    [ -f "$extra" ] || continue
    out=$(BUILD=$BUILD bash "$extra" 2>>"$log"); rc=$?
    count "" <<< "$out"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<< "$out"; then
      fail=$((fail+1)); echo "FAIL $(basename "$extra"): exited with status $rc (see $log)"
    fi
  done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
