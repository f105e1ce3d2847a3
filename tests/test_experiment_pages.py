"""The site shows results, not only code: every experiment notebook is committed executed (papermill on its CPU default,
then `tools/record_experiment.py`), ending with the record of that execution, and every figure in figures/ is shown
by some page (README / index, a library notebook or an experiment notebook)."""
import json, re
from pathlib import Path
import pytest

from helpers import REPO
EXPERIMENTS = sorted((REPO / 'nbs' / 'experiments').glob('*.ipynb'))
IMAGE = re.compile(r'!\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src="([^"]+)"')


def text_of(output) -> str:
    return ''.join(output.get('text', '')) + ''.join(output.get('data', {}).get('text/plain', ''))


@pytest.mark.parametrize('path', EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_committed_executed(path):
    cells = [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']
    assert any(c.get('outputs') for c in cells), \
        f"nbs/experiments/{path.name} has no outputs: execute it with papermill (--log-output) and `python tools/record_experiment.py OUT.ipynb`"
    record = ''.join(text_of(o) for o in cells[-1].get('outputs', []))
    assert 'wall time' in record.lower() and re.search(r'(?mi)^command: (\w+=\S* )*papermill ', record), \
        (f"nbs/experiments/{path.name} does not end with the record of a papermill execution (date, command, wall time): "
         f"its last cell printed {record[-300:]!r}")


def test_the_record_tool_refuses_other_code(tmp_path):
    "An execution of other code than the committed notebook is not recorded as its outputs."
    import importlib.util
    spec = importlib.util.spec_from_file_location('record_experiment', REPO / 'tools' / 'record_experiment.py')
    rec = importlib.util.module_from_spec(spec); spec.loader.exec_module(rec)
    nb = json.loads((REPO / 'nbs' / 'experiments' / 'paper_figures.ipynb').read_text())
    target = tmp_path / 'paper_figures.ipynb'; target.write_text(json.dumps(nb))
    run = json.loads(json.dumps(nb))
    run['cells'].insert(2, {'cell_type': 'code', 'execution_count': 1, 'id': 'inj', 'metadata': {'tags': ['injected-parameters']},
                            'outputs': [], 'source': ['seed = 1\n']})   # papermill's: left out
    code = next(c for c in run['cells'] if c['cell_type'] == 'code' and 'injected-parameters' not in c['metadata'].get('tags', []))
    code['outputs'] = [{'output_type': 'stream', 'name': 'stderr', 'text': ['epoch 1:  10%']},   # a progress bar, written piece by piece
                       {'output_type': 'stream', 'name': 'stderr', 'text': ['\repoch 1:  50%', '\repoch 1: 100%\n']},
                       {'output_type': 'stream', 'name': 'stderr', 'text': 'done\n'}]
    (tmp_path / 'run.ipynb').write_text(json.dumps(run))
    got = rec.record(tmp_path / 'run.ipynb', target)
    assert len(got['cells']) == len(nb['cells']) and not any('injected-parameters' in c['metadata'].get('tags', []) for c in got['cells'])
    assert next(c for c in got['cells'] if c.get('outputs'))['outputs'][0]['text'] == ['epoch 1: 100%\n', 'done\n']   # as a terminal shows it
    code['source'] = ['print("other code")\n']
    (tmp_path / 'run.ipynb').write_text(json.dumps(run))
    with pytest.raises(ValueError, match='other code'): rec.record(tmp_path / 'run.ipynb', target)


def shown_images() -> set[Path]:
    "Images that a page's markdown shows (`![..](path)` or `<img src=..>`), resolved from the page's own folder."
    found = set()
    for page in [REPO / 'nbs' / 'index.ipynb', *sorted((REPO / 'nbs').rglob('[0-9]*.ipynb')), *EXPERIMENTS]:
        for cell in json.loads(page.read_text())['cells']:
            if cell['cell_type'] != 'markdown': continue
            for m in IMAGE.finditer(''.join(cell['source'])):
                link = m[1] or m[2]
                for base in (page.parent, REPO):   # notebooks link ../figures/x.png; the index (README) figures/x.png
                    if (base / link).is_file(): found.add((base / link).resolve())
    return found


def test_every_figure_is_shown_by_a_page():
    figures = {p.resolve() for p in (REPO / 'figures').iterdir() if p.suffix.lower() in {'.png', '.jpg', '.jpeg', '.svg', '.gif'}}
    orphans = sorted(p.name for p in figures - shown_images())
    assert not orphans, (f"figures/ holds images no page shows: {orphans}. Show each in nbs/index.ipynb (README, `make readme`) "
                         "or in a notebook's markdown (![what](../figures/NAME.png)), or delete it.")


def documented_commands() -> list[tuple[str, str]]:
    "(page, line) of every papermill command the README and the notebooks' markdown document (records of executions left out)."
    pages = [(REPO / 'README.md', (REPO / 'README.md').read_text())] + [
        (p, '\n'.join(''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'markdown'))
        for p in [*sorted((REPO / 'nbs').glob('[0-9]*.ipynb')), *EXPERIMENTS]]
    return [(p.relative_to(REPO).as_posix(), line) for p, text in pages for line in text.splitlines()
            if re.search(r'papermill nbs/experiments/\w+\.ipynb \S', line)
            and not re.search(r'\d{4}-\d\d-\d\d[ T]\d\d:\d\d', line)]   # a record of an execution (dated) shows the command as it ran


def test_documented_commands_create_their_folder():
    "papermill does not create the output notebook's folder: each documented command does (`mkdir -p DIR && papermill ...`)."
    commands = documented_commands()
    assert len(commands) >= 6, commands
    missing = [(page, line.strip()) for page, line in commands
               if (folder := Path(re.search(r'papermill nbs/experiments/\w+\.ipynb (\S+)', line)[1]).parent) != Path('.')
               and f'mkdir -p {folder.as_posix()}' not in line]
    assert not missing, f"commands whose output folder may not exist on a fresh clone (add `mkdir -p DIR && `): {missing}"
