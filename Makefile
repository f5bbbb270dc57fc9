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

.PHONY: setup s3a sam demo stack test lint bench bench-tune clean

$(STAMP): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
		"Python 3.11 is required (found " + sys.version.split()[0] + "): set PYTHON=/path/to/python3.11")'
	@java -version >/dev/null 2>&1 || { echo "Java 17 is required by Spark: install a JDK 17 (e.g. openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e ".[tensorflow,spark,dev]" \
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

demo: s3a
	$(BIN)/python -m local demo $(LOCAL_ARGS)

stack: s3a
	$(BIN)/python -m local stack $(LOCAL_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint s3a sam
	SAM_CLI=$(abspath $(SAM_VENV))/bin/sam $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/performance.py

bench-tune: setup
	$(BIN)/python bench/performance.py --tune

clean:
	rm -rf $(VENV) $(SAM_VENV) demo dist .local-stack
