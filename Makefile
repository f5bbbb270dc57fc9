# Two commands do all the set-up on a fresh machine (Python 3.11 and Java 17 installed):
#   make demo   - sample images -> the job on local Spark -> outputs in demo/runs/demo/
#   make test   - lint and the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)

.PHONY: setup s3a demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
		"Python 3.11 is required (found " + sys.version.split()[0] + "): set PYTHON=/path/to/python3.11")'
	@java -version >/dev/null 2>&1 || { echo "Java 17 is required by Spark: install a JDK 17 (e.g. openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e ".[tensorflow,spark,dev]"
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

s3a: setup
	$(BIN)/python packaging/s3a_jars.py

demo: setup
	@test -d demo/images || $(BIN)/featurizer sample --output demo/images
	$(BIN)/featurizer run --input demo/images --output demo/runs --run-id demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint s3a
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/featurize_throughput.py

clean:
	rm -rf $(VENV) demo
