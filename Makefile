# Everything a fresh machine with python3 and make needs: `make report`, `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install sidekiq report run scenarios demo test lint thorough bench clean

SCENARIO ?= heroku-hourly

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dask,systems]'
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

# Sidekiq is Ruby: Debian's ruby-sidekiq, installed here when we are root with apt; without
# root its real tests are skipped on a developer's machine (CI must have it: they fail there).
sidekiq:
	@command -v sidekiq >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q ruby-sidekiq >/dev/null; \
	  else \
	    echo "make: no sidekiq; as root: apt-get install ruby-sidekiq" >&2; \
	  fi; }

test: lint sidekiq
	$(PY) -m pytest -q

thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/deploysim bench engine
	$(VENV)/bin/deploysim bench sim

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
