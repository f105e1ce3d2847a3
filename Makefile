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
# tools/apt_install.sh waits (up to APT_WAIT seconds) while another apt-get or dpkg holds apt's locks.
APT_WAIT ?= 600
export APT_WAIT
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	  tools/apt_install.sh dataset-fashion-mnist || echo "apt-get could not install dataset-fashion-mnist: using the bundled sample in data/"; \
	else echo "No apt: the demo uses the bundled Fashion-MNIST sample in data/ (or pass DEMO_PARAMS='-p data_dir /your/root')"; fi

# Headless Chromium for the documentation site's browser test (tests/test_docs.py, tests/test_lab.py): Debian's package where
# apt is usable; elsewhere those tests skip and say why (`make test` lists skip reasons).
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then echo "Chromium: $$(command -v chromium chromium-browser | head -1)"; \
	elif command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	  tools/apt_install.sh chromium || echo "apt-get could not install chromium: the browser tests will be skipped"; \
	else echo "No apt: the browser tests of the documentation site and JupyterLab will be skipped (install Chromium, or set CHROMIUM=/path)"; fi

# An executed notebook is part of its run's record and is never replaced: $(call next_nb,DIR,NAME) is the first free one of
# DIR/NAME.ipynb, DIR/NAME-2.ipynb, DIR/NAME-3.ipynb, ...
next_nb = $$(f=$(1)/$(2).ipynb; n=1; while [ -e $$f ]; do n=$$((n+1)); f=$(1)/$(2)-$$n.ipynb; done; echo $$f)

# The pretraining experiment notebook, run headlessly; the run folder gets the executed notebook,
# metrics.jsonl, TensorBoard logs, curves.png and the checkpoints. Run again, it continues an interrupted run (its
# notebook pretrain-2.ipynb, ...) or, the run finished, says so and stops: RUN=runs/other for a new one.
demo: setup data
	@mkdir -p $(RUN)
	@if [ -z "$(DEMO_PARAMS)" ] && $(PY) -c "import json, sys, yaml; epochs = yaml.safe_load(open('$(RUN)/config.yaml'))['epochs']; \
	  rows = [json.loads(l) for l in open('$(RUN)/metrics.jsonl') if l.strip()]; \
	  sys.exit(not any(r.get('epoch') == epochs and 'knn_top1' in r for r in rows))" 2>/dev/null; then \
	  echo "$(RUN) holds a finished run; its record: $$(ls $(RUN)/pretrain*.ipynb | tr '\n' ' ')"; \
	  echo "Nothing to do: RUN=runs/other for a new run (or make clean)."; \
	else nb=$(call next_nb,$(RUN),pretrain); echo "papermill -> $$nb"; \
	  $(VENV)/bin/papermill nbs/experiments/pretrain.ipynb $$nb -f configs/cpu_demo.yaml -p out_dir $(RUN) -p resume auto --log-output $(DEMO_PARAMS); fi
	@echo "Run folder: $(RUN) (pretrain*.ipynb, metrics.jsonl, steps.jsonl, curves.png, tb/, checkpoint-*.pt)"

# Any experiment notebook on its defaults (or PARAMS), headless: `make experiment EXP=paper_figures`,
# `make experiment EXP=linear_eval OUT=runs/demo PARAMS='-p protocol linear_features'`. OUT (default runs/EXP) is created;
# the executed notebook goes to OUT/EXP.ipynb, or OUT/EXP-2.ipynb, ... beside earlier executions.
EXP ?= pretrain
OUT ?= runs/$(EXP)
PARAMS ?=
.PHONY: experiment
experiment: setup data
	@mkdir -p $(OUT)
	@nb=$(call next_nb,$(OUT),$(EXP)); echo "papermill -> $$nb"; \
	$(VENV)/bin/papermill nbs/experiments/$(EXP).ipynb $$nb --log-output $(PARAMS)

# Export in sync, every library notebook's tests (nbdev_test), and the pytest suite, in one pytest run.
test: setup data chromium
	$(PY) -m pytest tests -v -rs --durations=25 -p no:cacheprovider

# The fast tier for iterating (about 3 minutes): no whole runs, no multi-process tests. CI runs `make test`.
test-fast: setup data
	$(PY) -m pytest tests -q -rs -p no:cacheprovider -m 'not slow'

export: setup
	$(VENV)/bin/nbdev_export

# README.md is generated from nbs/index.ipynb (nbconvert's markdown; tools/readme.py says what it adds).
readme: setup
	$(PY) tools/readme.py

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

# JupyterLab on the notebooks (root, as in containers and CI, needs --allow-root). Saving runs nbdev's pre-save hook
# (settings.ini: jupyter_hooks = True): notebooks are saved in nbdev_clean's form, outputs kept, so a save adds no noise.
# It is started in nbs/ because the hook reads each notebook by its path relative to the server's folder.
lab: setup
	cd nbs && $(abspath $(VENV))/bin/jupyter lab --ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter . $(if $(filter 0,$(shell id -u)),--allow-root)

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
