# Everything a fresh clone needs: `make demo` (the pretraining demo) and `make test` (all tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints.txt
RUN ?= runs/demo
DEMO_PARAMS ?=
# With data-loader workers on a small CPU, OpenMP threads that spin while waiting starve the
# workers (measured: 81 vs 366 img/s on 2 cores); passive waiting costs nothing on the model step.
OMP_WAIT_POLICY ?= PASSIVE
export OMP_WAIT_POLICY

.PHONY: setup data demo test export readme lab clean

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

# The pretraining experiment notebook, run headlessly; the run folder gets the executed notebook,
# metrics.jsonl, TensorBoard logs, curves.png and the checkpoint. Run again, it continues (or shows) the same run:
# `make clean` or RUN=runs/other for a new one.
demo: setup data
	mkdir -p $(RUN)
	$(VENV)/bin/papermill nbs/experiments/pretrain.ipynb $(RUN)/pretrain.ipynb -f configs/cpu_demo.yaml -p out_dir $(RUN) -p resume auto --log-output $(DEMO_PARAMS)
	@echo "Run folder: $(RUN) (pretrain.ipynb, metrics.jsonl, steps.jsonl, curves.png, tb/, checkpoint-*.pt)"

# Export in sync, every library notebook's tests (nbdev_test), and the pytest suite, in one pytest run.
test: setup data
	$(PY) -m pytest tests -v -p no:cacheprovider

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

lab: setup
	$(VENV)/bin/jupyter lab nbs

clean:
	rm -rf runs build dist *.egg-info
