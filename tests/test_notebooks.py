"""The library notebooks are the source: the package must match them, and their test cells must pass."""
import filecmp, os, shutil, subprocess, sys
import pytest

from helpers import BIN, REPO
LIBRARY_NOTEBOOKS = sorted(p.name for p in (REPO / 'nbs').glob('[0-9][0-9]*.ipynb'))


def test_export_in_sync(tmp_path):
    "nbdev_export must leave triplet_ssl/ unchanged: nobody edited the .py files by hand or forgot to export."
    lib = REPO / 'triplet_ssl'
    shutil.copytree(lib, tmp_path / 'before', ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run([BIN / 'nbdev_export'], cwd=REPO, check=True, capture_output=True)
    cmp = filecmp.dircmp(tmp_path / 'before', lib, ignore=['__pycache__'])
    changed = cmp.diff_files + cmp.left_only + cmp.right_only
    if changed:  # put the committed files back, so the failure is reported, not silently fixed
        for name in changed:
            if (tmp_path / 'before' / name).exists(): shutil.copy2(tmp_path / 'before' / name, lib / name)
            else: (lib / name).unlink()
    assert not changed, f"nbdev_export changes {changed}: edit the notebooks in nbs/, run `make export`, and commit both."


@pytest.mark.parametrize('notebook', LIBRARY_NOTEBOOKS)
def test_notebook(notebook):
    "Run the notebook's test cells with nbdev_test."
    r = subprocess.run([BIN / 'nbdev_test', '--path', f'nbs/{notebook}'], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0 and 'Failed' not in r.stderr + r.stdout, r.stderr[-6000:] + r.stdout[-2000:]


def test_readme_in_sync(tmp_path):
    "README.md is generated from nbs/index.ipynb (`make readme`)."
    subprocess.run([sys.executable, 'tools/readme.py', str(tmp_path / 'README.md')], cwd=REPO, check=True, capture_output=True)
    assert (tmp_path / 'README.md').read_text() == (REPO / 'README.md').read_text(), \
        "README.md differs from nbs/index.ipynb: edit the notebook and run `make readme`."
