# hpchub: `make demo` brings up the demo site and hub; `make test` runs the whole suite.
# Both run as root on Debian 12 and install what they need first.

SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
HUB_ENV := /opt/hpchub/hub
SITE ?= demo
SOURCES := pyproject.toml $(shell find src -type f -not -name '*.pyc' -not -path '*/__pycache__/*')

.PHONY: all install deps hub-env demo down status test unit bench docs clean

all: install

install: deps $(VENV)/.installed hub-env

deps:
	@scripts/install-deps.sh

# The development environment (pytest, playwright, the hpchub command), editable.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The hub's own environment: world-readable, outside the clone (the hub runs unprivileged
# and cannot read a clone under /root). Reinstalled whenever the sources change.
hub-env: .make/hub-env
.make/hub-env: $(SOURCES)
	test -x $(HUB_ENV)/bin/python || $(PYTHON) -m venv $(HUB_ENV)
	$(HUB_ENV)/bin/pip install --quiet --disable-pip-version-check '.[production]'
	$(HUB_ENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall .
	chmod -R a+rX $(HUB_ENV)
	mkdir -p .make && touch $@

demo: install
	$(VENV)/bin/hpchub site up --name $(SITE)

down:
	$(VENV)/bin/hpchub site down --name $(SITE)

status:
	$(VENV)/bin/hpchub site status --name $(SITE)

test: install
	$(VENV)/bin/pytest

unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit

bench: install
	$(VENV)/bin/python -m benchmarks

# The documentation (docs/), warnings as errors, into build/docs/index.html.
docs: $(VENV)/.installed
	$(VENV)/bin/python -m sphinx -W -q -b html docs build/docs

clean:
	rm -rf $(VENV) .make build src/*.egg-info
