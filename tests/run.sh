#!/usr/bin/env bash
# Runs every test program and the reference checks, and sums their PASS/FAIL/SKIP lines.
# Environment: BUILD (build folder), DS_TEST_NO_SAN=1 skips the sanitizer pass,
# DS_TEST_NO_EXTRA=1 skips the compile checks and fuzz runs.
# A check_*.py or extra_*.sh states the Python modules it cannot run without on a line
# "# needs: numpy gguf"; when one is missing from $PYTHON the check prints one SKIP line instead.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
export PYTHON
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

have_module() { # cached: is Python module $1 importable by $PYTHON?
  local var="have_${1//[^A-Za-z0-9]/_}"
  if [ -z "${!var:-}" ]; then
    if "$PYTHON" -c "import $1" >/dev/null 2>&1; then printf -v "$var" yes; else printf -v "$var" no; fi
  fi
  [ "${!var}" = yes ]
}

missing_modules() { # script: the modules of its "# needs:" line that $PYTHON lacks
  local m out=""
  for m in $(sed -n 's/^# needs: *//p' "$1" | head -n 1); do have_module "$m" || out="$out $m"; done
  echo "${out# }"
}

run_check() { # interpreter script: its PASS/FAIL/SKIP lines, or one SKIP when a module is missing
  local interp=$1 script=$2 name out rc missing err
  name=$(basename "$script"); name=${name%.*}
  if ! command -v "$interp" >/dev/null 2>&1; then
    count "" <<< "SKIP $name: no $interp"
    return
  fi
  missing=$(missing_modules "$script")
  if [ -n "$missing" ]; then
    count "" <<< "SKIP $name: needs the Python module(s) $missing, not installed for $PYTHON"
    return
  fi
  err=$(mktemp)
  out=$(BUILD=$BUILD "$interp" "$script" 2>"$err"); rc=$?
  cat "$err" >> "$log"
  count "" <<< "$out"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<< "$out"; then
    if grep -qE "No module named '(numpy|gguf|tokenizers|jinja2|llama_cpp)'" "$err"; then   # a reference, not our code
      count "" <<< "SKIP $name: $(grep -oE "No module named '[^']*'" "$err" | head -n 1) (see $log)"
    else
      fail=$((fail+1)); echo "FAIL $(basename "$script"): exited with status $rc (see $log)"
    fi
  fi
  rm -f "$err"
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
  [ -f "$py" ] && run_check "$PYTHON" "$py"
done
if [ -z "${DS_TEST_NO_EXTRA:-}" ]; then
  for extra in tests/extra_*.sh; do
    [ -f "$extra" ] && run_check bash "$extra"
  done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
