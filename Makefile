# Two commands do all the set-up on a fresh machine (Python 3.11 and Java 17 installed):
#   make demo   - sample images -> the whole service on a local stack (python -m local demo) -> e-mail text
#   make stack  - the local stack, left running (ports: make stack LOCAL_ARGS="--api-port 8080")
#   make test   - lint and the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := pyproject.toml constraints.txt lambda/requirements.txt tests/requirements.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-12)
# aws-sam-cli pins a boto3 the job cannot use: it gets a virtualenv of its own.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell sha256sum packaging/requirements-sam.txt | cut -c1-12)
# checkov and parliament (the template linters) pin boto3 and more: a virtualenv of their own too.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed-$(shell sha256sum tests/requirements-lint.txt | cut -c1-12)

.PHONY: setup s3a sam lint-tools demo stack test lint bench bench-tune bench-drop clean

$(STAMP): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
		"Python 3.11 is required (found " + sys.version.split()[0] + "): set PYTHON=/path/to/python3.11")'
	@java -version >/dev/null 2>&1 || { echo "Java 17 is required by Spark: install a JDK 17 (e.g. openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e ".[tensorflow,spark,quantize,dev]" \
		-r tests/requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

s3a: setup
	$(BIN)/python packaging/s3a_jars.py

$(SAM_STAMP): packaging/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet -r packaging/requirements-sam.txt
	rm -f $(SAM_VENV)/.installed-* && touch $@

sam: $(SAM_STAMP)

$(LINT_STAMP): tests/requirements-lint.txt
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet -r tests/requirements-lint.txt
	rm -f $(LINT_VENV)/.installed-* && touch $@

lint-tools: $(LINT_STAMP)

demo: s3a
	$(BIN)/python -m local demo $(LOCAL_ARGS)

stack: s3a
	$(BIN)/python -m local stack $(LOCAL_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint s3a sam lint-tools
	SAM_CLI=$(abspath $(SAM_VENV))/bin/sam LINT_TOOLS=$(abspath $(LINT_VENV))/bin $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/performance.py

bench-tune: setup
	$(BIN)/python bench/performance.py --tune

bench-drop: s3a
	$(BIN)/python -m bench.drop $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LINT_VENV) demo dist .local-stack
