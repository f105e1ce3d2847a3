# Everything a fresh clone needs: `make demo` (the pretraining demo) and `make test` (all tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints.txt
RUN ?= runs/demo
DEMO_PARAMS ?=
# OpenMP's thread policy (passive waiting, so that loader workers keep their cores) is set by the package itself
# (triplet_ssl/__init__.py), for every route: make, papermill, python -m, console scripts, torchrun, notebooks.

.PHONY: setup data chromium demo test test-fast export readme docs lab clean

# Virtual env with the package (editable) and the dev tools; redone when the requirements change.
$(VENV)/.installed: settings.ini setup.py $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST from Debian's package where apt is usable; otherwise the bundled sample in data/ is used.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "apt-get could not install dataset-fashion-mnist: using the bundled sample in data/"; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "apt-get could not install dataset-fashion-mnist: using the bundled sample in data/"; \
	else echo "No apt: the demo uses the bundled Fashion-MNIST sample in data/ (or pass DEMO_PARAMS='-p data_dir /your/root')"; fi

# Headless Chromium for the documentation site's browser test (tests/test_docs.py, tests/test_lab.py): Debian's package where
# apt is usable; elsewhere those tests skip and say why.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then echo "Chromium: $$(command -v chromium chromium-browser | head -1)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "apt-get could not install chromium: the browser tests will be skipped"; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
	  (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "apt-get could not install chromium: the browser tests will be skipped"; \
	else echo "No apt: the browser tests of the documentation site and JupyterLab will be skipped (install Chromium, or set CHROMIUM=/path)"; fi

# The pretraining experiment notebook, run headlessly; the run folder gets the executed notebook,
# metrics.jsonl, TensorBoard logs, curves.png and the checkpoint. Run again, it continues (or shows) the same run:
# `make clean` or RUN=runs/other for a new one.
demo: setup data
	mkdir -p $(RUN)
	$(VENV)/bin/papermill nbs/experiments/pretrain.ipynb $(RUN)/pretrain.ipynb -f configs/cpu_demo.yaml -p out_dir $(RUN) -p resume auto --log-output $(DEMO_PARAMS)
	@echo "Run folder: $(RUN) (pretrain.ipynb, metrics.jsonl, steps.jsonl, curves.png, tb/, checkpoint-*.pt)"

# Export in sync, every library notebook's tests (nbdev_test), and the pytest suite, in one pytest run.
test: setup data chromium
	$(PY) -m pytest tests -v -p no:cacheprovider

# The fast tier for iterating (about 3 minutes): no whole runs, no multi-process tests. CI runs `make test`.
test-fast: setup data
	$(PY) -m pytest tests -q -p no:cacheprovider -m 'not slow'

export: setup
	$(VENV)/bin/nbdev_export

# README.md is generated from nbs/index.ipynb.
readme: setup
	$(VENV)/bin/jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --output-dir . --output README

# Execute the library notebooks in place, keeping their outputs (skipping nbdev's `slow` and `eval: false` cells,
# which keep what they had), then regenerate README.md from the executed index. NB=nbs/00_losses.ipynb for some only.
NB ?=
.PHONY: notebooks
notebooks: setup data
	$(PY) tools/run_notebooks.py $(NB)
	$(MAKE) --no-print-directory readme

# The documentation site in _docs/ (Sphinx + MyST-NB, from the notebooks as committed; math renders offline).
# With Quarto installed, nbdev's own site still builds with `nbdev_docs`.
docs: setup
	$(PY) docs/build.py --strict

# JupyterLab on the notebooks (root, as in containers and CI, needs --allow-root).
lab: setup
	$(VENV)/bin/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf runs build dist *.egg-info _build _docs

# detectron2, optional: the paper's detection protocol (`python -m triplet_ssl.detectron2_runner train ...`). From a folder
# of wheels (D2_WHEELS=DIR, e.g. the CPU build in ../shared/wheels), else built from its source as its install
# guide says (needs gcc; on a GPU machine a CUDA toolkit matching torch.version.cuda, and CONSTRAINTS= for torch).
.PHONY: detectron2
D2_WHEELS ?=
detectron2: setup
	$(if $(D2_WHEELS),$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) $(D2_WHEELS)/detectron2-*.whl,$(PY) -m pip install -q --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git')
	$(PY) -c "import detectron2; print('detectron2', detectron2.__version__, 'from', detectron2.__file__)"
