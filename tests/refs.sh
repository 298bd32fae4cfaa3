#!/usr/bin/env bash
# The reference implementations the suite compares with (numpy, the gguf package, HF tokenizers,
# jinja2 and llama.cpp through llama-cpp-python), installed into a virtual environment when the
# package index is reachable. Prints the Python interpreter the suite should use on stdout;
# notes go to stderr. Never fails: a check whose reference is missing prints SKIP.
#   bash tests/refs.sh PYTHON VENV
# The environment sees the base interpreter's packages (--system-site-packages), so what the
# machine already has (a llama-cpp-python compiled once) is used, not installed again.
set -u
PY=${1:-python3}
VENV=${2:-build/venv}
note() { echo "refs: $*" >&2; }
if ! command -v "$PY" >/dev/null 2>&1; then
  note "no $PY: the Python checks will be skipped"
  echo "$PY"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv --system-site-packages "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    note "could not create a virtual environment in $VENV (python3-venv missing?); using $PY as it is"
    echo "$PY"
    exit 0
  fi
fi
VPY=$VENV/bin/python
pipi() { "$VPY" -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 20 "$@"; }
missing=""
for m in numpy gguf tokenizers jinja2 safetensors; do
  "$VPY" -c "import $m" >/dev/null 2>&1 || missing="$missing $m"
done
if [ -n "$missing" ]; then
  note "installing$missing into $VENV"
  pipi $missing >&2 2>/dev/null || note "could not install$missing (no package index?); their checks will be skipped"
fi
# llama.cpp compiles for minutes: tried once per environment (delete $VENV/.no-llama-cpp to retry)
if ! "$VPY" -c "import llama_cpp" >/dev/null 2>&1 && [ ! -e "$VENV/.no-llama-cpp" ]; then
  note "installing llama-cpp-python into $VENV (compiles llama.cpp: a few minutes)"
  if ! CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} pipi llama-cpp-python >&2 2>/dev/null; then
    note "llama-cpp-python not installed; the live llama.cpp checks will be skipped"
    date > "$VENV/.no-llama-cpp"
  fi
fi
echo "$VPY"
