# dunline: the two commands that matter are `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench bench-load install pbx-up pbx-down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

demo: install
	$(BIN)/dunline demo

test: install
	PY=$(BIN)/python bash scripts/test.sh

bench: install
	$(BIN)/python -m bench

# one node under a full floor on the sandbox PBX (minutes; not part of `make test`); collectors
# wait on the floor (seats) as in production; BENCH_LOAD_ARGS= (empty) rings a phone for each call
BENCH_LOAD_ARGS ?= --seats
bench-load: install
	$(BIN)/python -m bench.load $(BENCH_LOAD_ARGS)

pbx-up: install
	$(BIN)/dunline pbx up

pbx-down:
	$(BIN)/dunline pbx down

clean: pbx-down
	rm -rf $(VENV) var
