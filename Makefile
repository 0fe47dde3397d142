# dunline: the two commands that matter are `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install pbx-up pbx-down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

demo: install
	$(BIN)/dunline demo

test: install
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python -m bench

pbx-up: install
	$(BIN)/dunline pbx up

pbx-down:
	$(BIN)/dunline pbx down

clean: pbx-down
	rm -rf $(VENV) var
