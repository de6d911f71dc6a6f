# Everything is set up from a fresh machine: system packages, the virtual environment, the browser.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := chromium espeak-ng sox
DEMO := livereview/data/demo

.PHONY: setup system models demo test test-fast lint bench clean

setup: $(STAMP) system models

# Derived once and cached (~/.cache/livereview or $$LIVEREVIEW_CACHE_DIR), so no run waits for them:
# the default classifier's heads, fitted on its shipped training data, and the speaker-embedding
# network exported for ONNX Runtime.
models: $(STAMP)
	$(PY) -c 'from livereview.stages.classify import default_classifier; print(default_classifier().name, "ready")'
	$(PY) -c 'from livereview.stages.diarize.models import load_offline_pipeline; load_offline_pipeline(0.2, "cpu", "onnx"); print("diarization networks exported")'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["livereview"]["no-deps-packages"]))')
	touch $@

# Debian packages: chromium (browser tests), espeak-ng and sox (rebuilding the demo recording).
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(PY) -m livereview run $(DEMO)/demo_session.flac --num-speakers 4 --party $(DEMO)/party.yaml --language en

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests -m "not slow and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check livereview tests benchmarks
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	for bench in benchmarks/bench_*.py; do $(PY) $$bench || exit 1; done

clean:
	rm -rf $(VENV) output .pytest_cache
