# One place for the commands the README and CI use.
PY ?= python3
VENV ?= .venv
# pip on these machines finds the CPU torch wheel through its configured find-links folder; uv does not read
# pip's config, so hand it over explicitly (empty elsewhere: a GPU machine gets the CUDA torch from PyPI).
FIND_LINKS := $(shell $(PY) -m pip config get global.find-links 2>/dev/null)
UV_FLAGS := $(if $(FIND_LINKS),--find-links $(FIND_LINKS),) --build-constraint constraints.txt -c constraints.txt

.PHONY: setup demo test lint typecheck check bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q uv
	SAM2_BUILD_CUDA=0 $(VENV)/bin/uv pip install --python $(VENV)/bin/python $(UV_FLAGS) --compile-bytecode -e ".[test]"
	@# Bytecode of our own packages too: every CLI start and test subprocess would otherwise recompile them
	@# where bytecode is not written back (PYTHONDONTWRITEBYTECODE).
	$(VENV)/bin/python -m compileall -q flows pixelrefer_core storage > /dev/null
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/pixelrefer demo

# pytest exits 5 when it collected nothing: treat that as a failure, not a pass.
test: setup
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check flows pixelrefer_core storage tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	rm -rf $(VENV)
