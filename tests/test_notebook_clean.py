"""Notebooks round-trip: they are committed in `nbdev_clean`'s form with their outputs, so `nbdev_clean` (and saving in
JupyterLab, whose pre-save hook runs the same cleaning: settings.ini's `jupyter_hooks = True`, `make lab`) changes nothing
and a diff shows only what someone meant to change."""
import copy, importlib.util, json, re
from pathlib import Path
import pytest

from helpers import REPO
_spec = importlib.util.spec_from_file_location('record_experiment', REPO / 'tools' / 'record_experiment.py')
rec = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rec)


def notebooks(root: Path = REPO / 'nbs') -> list[Path]:
    "Every notebook `nbdev_clean` cleans: under nbs/, folders starting with '_' or '.' left out (as nbdev's globtastic does)."
    return sorted(p for p in root.rglob('*.ipynb') if not any(re.match(r'[_.]', part) for part in p.relative_to(root).parts[:-1]))


def is_clean(text: str) -> bool: return rec.nb_text(rec.clean(json.loads(text))) == text


def test_notebooks_are_committed_clean():
    dirty = [p.relative_to(REPO).as_posix() for p in notebooks() if not is_clean(p.read_text())]
    assert not dirty, (f"not in nbdev_clean's form: {dirty}. Run `.venv/bin/nbdev_clean --fname NOTEBOOK` (outputs are kept) "
                       "and commit the result; `make lab` saves notebooks in that form.")


def saved_by_jupyter(text: str) -> str:
    "What opening and saving in JupyterLab without the hook does to a clean notebook: kernel metadata, execution counts."
    nb = json.loads(text)
    nb['metadata']['language_info'] = {'name': 'python', 'version': '3.11.2', 'mimetype': 'text/x-python'}
    nb['metadata'].setdefault('kernelspec', {})['display_name'] = 'Python 3 (ipykernel)'
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    for i, c in enumerate(code): c['execution_count'] = i + 1; c['metadata']['execution'] = {'iopub.status.busy': '2026-12-01T10:00:00Z'}
    return json.dumps(nb, indent=1, ensure_ascii=False) + '\n'


def test_the_check_catches_an_unclean_notebook_and_keeps_outputs():
    path = REPO / 'nbs' / 'experiments' / 'pretrain.ipynb'   # committed executed: outputs, tags and a parameters cell
    text = path.read_text()
    nb = json.loads(text)
    assert any(c.get('outputs') for c in nb['cells']), f"{path.name} has no outputs to keep"
    assert not is_clean(saved_by_jupyter(text))
    cleaned = rec.clean(json.loads(saved_by_jupyter(text)))
    outputs = lambda nb: [c.get('outputs') for c in nb['cells']]
    assert outputs(cleaned) == outputs(nb)   # nbdev_clean with this settings.ini keeps every output
    assert [c['metadata'].get('tags') for c in cleaned['cells']] == [c['metadata'].get('tags') for c in nb['cells']]   # papermill's
    assert is_clean(rec.nb_text(cleaned))


def test_jupyter_save_hook_cleans(tmp_path):
    "settings.ini turns nbdev's Jupyter hook on: the pre-save hook `make lab` installs cleans what JupyterLab saves."
    from nbdev.clean import clean_jupyter
    path = REPO / 'nbs' / '00_losses.ipynb'
    model = {'type': 'notebook', 'content': json.loads(saved_by_jupyter(path.read_text()))}
    clean_jupyter(path=str(path), model=model)
    assert model['content'] == rec.clean(json.loads(path.read_text()))
    assert 'ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter' in (REPO / 'Makefile').read_text()
