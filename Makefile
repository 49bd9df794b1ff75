# One place for the commands the README and CI use.
PY ?= python3
VENV ?= .venv
# pip on these machines finds the CPU torch wheel through its configured find-links folder; uv does not read
# pip's config, so hand it over explicitly (empty elsewhere: a GPU machine gets the CUDA torch from PyPI).
FIND_LINKS := $(shell $(PY) -m pip config get global.find-links 2>/dev/null)
UV_FLAGS := $(if $(FIND_LINKS),--find-links $(FIND_LINKS),) --build-constraint constraints.txt -c constraints.txt

.PHONY: setup system-packages demo test lint typecheck check bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q uv
	SAM2_BUILD_CUDA=0 $(VENV)/bin/uv pip install --python $(VENV)/bin/python $(UV_FLAGS) --compile-bytecode -e ".[test]"
	@# Bytecode of our own packages too: every CLI start and test subprocess would otherwise recompile them
	@# where bytecode is not written back (PYTHONDONTWRITEBYTECODE).
	$(VENV)/bin/python -m compileall -q flows pixelrefer_core storage > /dev/null
	touch $@

setup: $(VENV)/.installed

# Debian packages the tests use for real: Chromium (the report opened in a real browser, driven by playwright)
# and PostgreSQL (the catalog several machines share; tests/support/servers.py starts it on loopback).
# Installed with apt only when missing (as root, or through sudo), so a machine that has them is not touched.
system-packages:
	@need=""; \
	command -v chromium > /dev/null 2>&1 || need="$$need chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || need="$$need postgresql"; \
	if [ -n "$$need" ]; then \
		echo "installing$$need (apt-get)"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$need; \
	fi

demo: setup
	$(VENV)/bin/pixelrefer demo

# pytest exits 5 when it collected nothing: treat that as a failure, not a pass.
test: setup system-packages
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check flows pixelrefer_core storage tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	rm -rf $(VENV)
