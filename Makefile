# Everything a fresh machine with python3 and make needs: `make report`, `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install systems report run scenarios demo test lint thorough bench clean

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

# The real systems that are not Python packages: Sidekiq (Ruby, Debian's ruby-sidekiq) and a
# RabbitMQ server (Debian's rabbitmq-server, for Celery on RabbitMQ), installed here when we are
# root with apt; without root their real tests are skipped on a developer's machine (CI must
# have them: they fail there).
APT_SYSTEMS := $(if $(shell command -v sidekiq),,ruby-sidekiq) \
	$(if $(wildcard /usr/lib/rabbitmq/bin/rabbitmq-server),,rabbitmq-server)

systems:
	@if [ -n "$(strip $(APT_SYSTEMS))" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      $(APT_SYSTEMS) >/dev/null; \
	  else \
	    echo "make: missing $(strip $(APT_SYSTEMS)); as root: apt-get install $(strip $(APT_SYSTEMS))" >&2; \
	  fi; fi

# Two processes, a test file each at a time (one file's real servers stay in one process); the
# longest file, the real calibration, is started first (tests/conftest.py). Then, alone, the
# tests that time real processes at milliseconds and need both cores to themselves.
test: lint systems
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not alone"
	$(PY) -m pytest -q -m alone

thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/deploysim bench engine
	$(VENV)/bin/deploysim bench sim

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
