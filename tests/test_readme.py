"""The README describes the code as it is: its parameter table is Config (every field, its default and its comment), the
run folder's file names are the trainer's, and no count of tests is written by hand. (README.md itself is nbs/index.ipynb's
output: tests/test_notebooks.py checks it is in sync; tests/test_notebook_outputs.py that the index's outputs are not stale.)"""
import re
from helpers import REPO

README = (REPO / 'README.md').read_text()


def test_parameter_table_is_config():
    from triplet_ssl.cli import params_of, show_value
    from triplet_ssl.config import Config
    esc = lambda t: t.replace('|', r'\|').replace('*', r'\*')
    rows = dict(re.findall(r'(?m)^\| [^|]* \| `(\w+)` \| (.*) \|$', README))
    for p in params_of(Config):
        assert p['name'] in rows, f"README's parameter table lacks Config.{p['name']}: run `make notebooks` (or execute nbs/index.ipynb) and `make readme`"
        assert rows[p['name']] == f"`{esc(show_value(p['default']))}` | {esc(p['doc'])}", \
            f"README's row for {p['name']} is stale ({rows[p['name']]!r}): run `make notebooks` and `make readme`"


def test_run_folder_names_are_the_trainers():
    from triplet_ssl.runs import RUN_FILES, checkpoint_path
    assert all(f'`{name}`' in README for name in RUN_FILES), RUN_FILES
    name = re.sub(r'\d', r'\\d', re.escape(checkpoint_path('', 12345678).name))   # the checkpoint names the trainer writes
    assert 'checkpoint.pt`' not in README and re.search(f'`{name}`', README), "README names no checkpoint as the trainer does"


def test_no_hand_written_test_counts():
    counts = re.findall(r'\b\d+ (?:tests|passed|skipped)\b', README)
    assert not counts, f"README states test counts {counts}: `make test` prints them; don't copy them into nbs/index.ipynb"
