# Everything a fresh machine with python3 and make needs: `make report`, `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install report run scenarios demo test lint thorough bench clean

SCENARIO ?= heroku-hourly

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(VENV)/bin/deploysim report

run: $(STAMP)
	$(VENV)/bin/deploysim run $(SCENARIO)

scenarios: $(STAMP)
	$(VENV)/bin/deploysim scenarios

demo: $(STAMP)
	$(VENV)/bin/deploysim demo

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q

thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/deploysim bench engine
	$(VENV)/bin/deploysim bench sim

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
