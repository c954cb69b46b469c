# The two set-up commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
QEMU_CACHE ?= $(HOME)/.cache/chaintrace/qemu
DEMO_OUT ?= demo-out
TEST_CACHE ?= $(HOME)/.cache/chaintrace/test-index
CHECK_CACHE ?= $(HOME)/.cache/chaintrace

.PHONY: all venv test demo qemu bench check-qemu clean oracle fuzz

all: test

$(BIN)/chaintrace: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/chaintrace

## Fetch real QEMU sources (bookworm 7.2, trixie 10.0.x, sid 10.2.x) into $(QEMU_CACHE).
qemu:
	scripts/fetch-qemu --cache $(QEMU_CACHE) bookworm trixie sid

## The whole test suite; real-QEMU tests run when trees are fetched (always under CI=true).
## Under CI=true the trees are fetched first, qemu-system-x86 is installed when missing (the
## model's --from-qmp runs against it), the real-QEMU tests must run, and the shipped
## trace specs are checked against all three versions (JUnit in test-artifacts/).
test: venv
	@if [ "$$CI" = "true" ]; then scripts/fetch-qemu --cache $(QEMU_CACHE) bookworm trixie sid; fi
	@# The model's --from-qmp is tested on a running QEMU: Debian's, installed under CI when missing.
	@if [ "$$CI" = "true" ] && ! command -v qemu-system-x86_64 >/dev/null; then \
	  apt-get install -y --no-install-recommends qemu-system-x86 || \
	  { apt-get update && apt-get install -y --no-install-recommends qemu-system-x86; }; fi
	if [ "$$CI" = "true" ]; then export CHAINTRACE_TEST_CACHE=$(TEST_CACHE); fi; $(BIN)/python -m pytest -q
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory check-qemu CHECK_CACHE=$(TEST_CACHE); fi

## The shipped trace specs (queries/qemu/*.toml) against the fetched 7.2, 10.0.x and 10.2.x.
check-qemu: venv
	mkdir -p test-artifacts
	$(BIN)/chaintrace check queries/qemu/*.toml --cache $(CHECK_CACHE) --junit test-artifacts/check-qemu.xml \
	  $(foreach s,bookworm trixie sid,--tree "$$(scripts/fetch-qemu --cache $(QEMU_CACHE) --print-path $(s))")

## The main job: trace QMP `migrate` to the `threshold_size` assignment on QEMU 10.2.
demo: venv
	scripts/fetch-qemu --cache $(QEMU_CACHE) sid
	mkdir -p $(DEMO_OUT)
	tree="$$(scripts/fetch-qemu --cache $(QEMU_CACHE) --print-path sid)" && \
	$(BIN)/chaintrace index "$$tree" && \
	$(BIN)/chaintrace trace "$$tree" --from qmp:migrate --to assign:threshold_size --max-paths 12 -o $(DEMO_OUT)/chain.json && \
	$(BIN)/chaintrace trace "$$tree" --from qmp:migrate --to assign:threshold_size --max-paths 12 -o $(DEMO_OUT)/chain.txt && \
	$(BIN)/chaintrace trace "$$tree" --from qmp:migrate --to assign:threshold_size --max-paths 12 --rankdir TB -o $(DEMO_OUT)/chain.svg && \
	$(BIN)/chaintrace doc "$$tree" --from qmp:migrate --to assign:threshold_size -o $(DEMO_OUT)/doc && \
	cat $(DEMO_OUT)/chain.txt
	@echo "demo: wrote $(DEMO_OUT)/chain.txt, chain.json, chain.svg and doc/index.md, doc/index.html"

## The compiler and runtime oracles of QEMU 10.2 (bench/oracle/): a real build, by hand, never in CI (20-60 min on 2 cores).
oracle: venv
	scripts/fetch-qemu --cache $(QEMU_CACHE) sid
	$(BIN)/python bench/oracle/build-and-record --tree "$$(scripts/fetch-qemu --cache $(QEMU_CACHE) --print-path sid)"

## The robustness suite (tests/test_robustness.py) twenty times longer, with a seed of its own (FUZZ_SEED=N to repeat one).
fuzz: venv
	CHAINTRACE_FUZZ_SCALE=20 CHAINTRACE_FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} $(BIN)/python -m pytest -q tests/test_robustness.py tests/test_odd_trees.py tests/test_limits.py

bench: venv
	$(BIN)/python bench/index_bench.py
	$(BIN)/python bench/trace_bench.py
	$(BIN)/python bench/check_bench.py
	$(BIN)/python bench/phases.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
