# `make demo` and `make test` each create .venv and install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test docs bench clean

$(INSTALLED): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench,docs]"
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m fedplugin.demo $(ARGS)

test: $(INSTALLED)
	$(PY) -m pytest $(ARGS)

docs: $(INSTALLED)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(INSTALLED)
	$(PY) benchmarks/throughput.py $(ARGS)

clean:
	rm -rf $(VENV) docs/_build benchmarks/results *.egg-info
