"""The library notebooks are committed executed (`make notebooks`), and their printed numbers are not stale."""
import base64, copy, importlib.util, re
import nbformat, pytest

from helpers import REPO
_spec = importlib.util.spec_from_file_location('run_notebooks', REPO / 'tools' / 'run_notebooks.py')
rn = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rn)

# Re-executed by `test_outputs_not_stale`: the notebooks that run in well under a minute on a loaded 2-core CPU
# (measured with `python tools/run_notebooks.py`: 10-25 s each); the slow ones are covered by test_notebooks.py.
CHEAP = ['00_losses.ipynb', '03_distributed.ipynb', '05_optim.ipynb', '14_bernoulli.ipynb', 'index.ipynb']
MAX_IMAGE_KB = 150


def _rel(p): return p.relative_to(REPO).as_posix()


@pytest.mark.parametrize('path', rn.library_notebooks(), ids=lambda p: p.name)
def test_committed_with_outputs(path):
    "Every library notebook is committed executed: a reader sees its results without running anything."
    assert rn.has_outputs(nbformat.read(path, as_version=4)), f"{_rel(path)} has no committed outputs: run `make notebooks`"


def test_inline_figures():
    "At least 4 inline figures among the library notebooks, each small enough to keep in git (PNG of ~100 KB)."
    images = []
    for path in rn.library_notebooks():
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for o in cell.get('outputs', []):
                for mime, data in o.get('data', {}).items():
                    if mime.startswith('image/'): images.append((f'{_rel(path)} cell {i}', mime, len(base64.b64decode(data)) / 1024))
    assert len(images) >= 4, f"only {len(images)} inline figures in the library notebooks ({images}): run `make notebooks`"
    big = [im for im in images if im[2] > MAX_IMAGE_KB]
    assert not big, f"inline figures over {MAX_IMAGE_KB} KB: {big}; save them at a lower dpi"


def test_compare_catches_stale_numbers():
    "The comparison used below flags a changed printed number, a missing output and a rounding flip it must allow."
    nb = nbformat.read(REPO / 'nbs' / 'index.ipynb', as_version=4)
    skip = rn.skipped_cells(REPO / 'nbs' / 'index.ipynb')
    printed = [i for i, c in enumerate(nb.cells) if not skip[i] and rn.numbers(c)]
    assert printed, "nbs/index.ipynb has no committed outputs: run `make notebooks`"
    agree = lambda a, b: rn.compare(a, b, skip) == []
    assert agree(nb, copy.deepcopy(nb))
    i = printed[0]
    # the printed text: a stream's, or a displayed result's plain text (the index's generated tables)
    get = lambda o: o['text'] if 'text' in o else o['data']['text/plain']
    def put(o, t):
        if 'text' in o: o['text'] = t
        else: o['data']['text/plain'] = t
    text = ''.join(get(nb.cells[i].outputs[0]))
    stale = copy.deepcopy(nb)
    put(stale.cells[i].outputs[0], re.sub(r'\d+\.\d+', lambda m: f'{float(m.group()) * 1.5 + 1:.4f}', text, count=1))
    assert not agree(nb, stale)
    flip = copy.deepcopy(nb)   # one unit in the last printed digit: a rounding flip, not staleness
    put(flip.cells[i].outputs[0], re.sub(r'(\d+\.)(\d+)', lambda m: m.group(1) + str(int(m.group(2)) + 1).zfill(len(m.group(2)))[-len(m.group(2)):], text, count=1))
    assert agree(nb, flip)
    empty = copy.deepcopy(nb); empty.cells[i].outputs = []
    assert not agree(empty, nb)


@pytest.mark.parametrize('name', CHEAP)
def test_outputs_not_stale(name):
    "Re-execute the notebook (slow cells skipped) and compare its printed numbers with the committed ones."
    problems = rn.check(REPO / 'nbs' / name, log=lambda *a: None)
    assert not problems, '\n'.join(problems) + '\nIf the change is intended, run `make notebooks` and commit the notebooks.'
