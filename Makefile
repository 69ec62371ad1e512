# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Every install comes from requirements.lock (exact versions, made by `make lock`), so a fresh
# clone gets the same packages on any day, whatever the registries serve by then.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LOCK   ?= requirements.lock
STAMP  := $(VENV)/.installed
# Debian programs the demo, the tests and the benchmarks run: speech synthesis, audio tools,
# the Opus anchor codec.
SYSTEM_TOOLS := espeak-ng sox opusenc
SYSTEM_DEBS  := espeak-ng sox opus-tools

.PHONY: setup system demo test lint lock clean

# The venv's Python must be the one the lock was made for ("# python: X.Y" in its header).
$(STAMP): pyproject.toml $(LOCK)
	@want=$$(sed -n 's/^# python: //p' $(LOCK)); \
	have=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	[ "$$want" = "$$have" ] || { echo "$(LOCK) is for Python $$want, $(PYTHON) is $$have:" \
	  "run 'make PYTHON=python$$want', or 'make lock PYTHON=$(PYTHON) LOCK=requirements-$$have.lock'" \
	  "then 'make LOCK=requirements-$$have.lock ...' (raycodec supports 3.10-3.12)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep '^pip==' $(LOCK))"
	# --no-deps: the lock is the whole environment; pip check proves it is consistent.
	$(PY) -m pip install --quiet --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# Installs the Debian programs when one is missing (as root, or through sudo).
system:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages for:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(SYSTEM_DEBS) >/dev/null; \
	fi

setup: $(STAMP) system

demo: setup
	bash experiments/demo.sh

# pytest exits 5 when it collects nothing; make treats any non-zero status as failure.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check raycodec experiments benchmarks tests

# A new lock from pyproject.toml's ranges, resolved in a clean venv of $(PYTHON).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,eval,pb2]'
	{ sed -n '1,4p' requirements.lock; \
	  .lock-venv/bin/python -c 'import sys; print("# python: %d.%d" % sys.version_info[:2])'; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v '^wheel=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .lock-venv .pytest_cache .ruff_cache build *.egg-info
