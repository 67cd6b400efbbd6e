# `make demo` and `make test` each create .venv and install what they need first.
# PYTHON: a Python that setup.cfg's python_requires admits: python3 if it is one, else the newest
# python3.N on PATH or in pyenv (tools/pythons.py); `make test PYTHON=/path/to/python` chooses.
PYTHON ?= $(shell python3 tools/pythons.py)
SESSIONS ?= minimum newest wheel
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# nox lives in an environment of its own: dp-accounting (extra `privacy`) pins attrs < 24,
# which today's nox cannot import with.
NOX_VENV := .venv-nox
NOX := $(NOX_VENV)/bin/nox

.PHONY: demo test docs bench compat clean

# A .venv made with a Python that python_requires no longer admits is made again.
$(INSTALLED): setup.cfg setup.py
	@test -n "$(PYTHON)" || { echo "no supported Python found: see python_requires in setup.cfg" >&2; exit 1; }
	python3 tools/pythons.py --check $(PY) || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench,docs,dev]"
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m fedplugin.demo $(ARGS)

# Two pytest processes (pytest-xdist), each whole test file in one of them so that a file's
# shared cluster is started once: the suite's clusters mostly wait on messages, not cores.
# `make test TEST_PROCESSES=0` runs it in this one process.
TEST_PROCESSES ?= 2
test: $(INSTALLED)
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(ARGS)

docs: $(INSTALLED)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(INSTALLED)
	$(PY) benchmarks/throughput.py $(ARGS)

# The declared minimum versions, the newest versions, and the built wheel, each in a fresh
# environment with the tests marked `compat` (noxfile.py; docs/guide/versions.rst).
$(NOX): setup.cfg
	test -x $(NOX_VENV)/bin/python || $(PYTHON) -m venv $(NOX_VENV)
	$(NOX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NOX_VENV)/bin/python -m pip install --quiet "nox[uv]>=2025.2.9"
	touch $(NOX)

compat: $(NOX)
	$(NOX) -s $(SESSIONS) $(ARGS)

clean:
	rm -rf $(VENV) $(NOX_VENV) .nox build dist docs/_build benchmarks/results *.egg-info
