"""The Makefile's run targets keep the record: a second `make demo` never replaces the first execution's notebook (an
interrupted run continues into pretrain-2.ipynb; a finished one is left alone, saying so), and `make experiment` creates
the output folder. papermill is replaced by a stub that records its arguments and plays a run; nothing is trained."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

from helpers import REPO

STUB = '''#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ['STUB_LOG'], 'a') as f: f.write(json.dumps(args) + '\\n')
Path(args[1]).write_text('executed ' + os.environ.get('STUB_LABEL', ''))
if '-p' in args and 'out_dir' in args:   # the demo: play a run of 2 epochs, finished or not
    out = Path(args[args.index('out_dir') + 1]); out.mkdir(parents=True, exist_ok=True)
    (out / 'config.yaml').write_text('epochs: 2\\n')
    epochs = range(3) if os.environ.get('STUB_FINISH') else range(2)
    (out / 'metrics.jsonl').write_text(''.join(json.dumps(dict(epoch=e, step=10 * e, knn_top1=60.0 + e)) + '\\n' for e in epochs))
'''


@pytest.fixture
def make(tmp_path):
    venv = tmp_path / 'venv' / 'bin'; venv.mkdir(parents=True)
    (venv / 'python').write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / 'papermill').write_text(STUB.format(python=sys.executable))
    for f in venv.iterdir(): f.chmod(0o755)
    log = tmp_path / 'papermill.log'

    def make(*args, **env):
        r = subprocess.run(['make', '--no-print-directory', '-o', 'setup', '-o', 'data', *args, f'VENV={venv.parent}'], cwd=REPO,
                           env={**os.environ, 'PYTHONPATH': str(REPO), 'STUB_LOG': str(log), **env}, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        calls = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return r.stdout, calls
    return make


def test_a_second_demo_keeps_the_first_notebook(make, tmp_path):
    run = tmp_path / 'demo'
    out, calls = make('demo', f'RUN={run}', STUB_LABEL='first')   # interrupted after epoch 1
    assert [c[1] for c in calls] == [f'{run}/pretrain.ipynb'] and ['-p', 'resume', 'auto'] == calls[0][calls[0].index('resume') - 1:][:3]
    out, calls = make('demo', f'RUN={run}', STUB_LABEL='second', STUB_FINISH='1')   # continues, into a new notebook
    assert [c[1] for c in calls] == [f'{run}/pretrain-2.ipynb']
    assert (run / 'pretrain.ipynb').read_text() == 'executed first' and (run / 'pretrain-2.ipynb').read_text() == 'executed second'
    out, calls = make('demo', f'RUN={run}', STUB_LABEL='third')   # finished: nothing runs, and it says so
    assert calls == [] and 'holds a finished run' in out and 'pretrain.ipynb' in out and 'pretrain-2.ipynb' in out, out
    assert sorted(p.name for p in run.glob('*.ipynb')) == ['pretrain-2.ipynb', 'pretrain.ipynb']
    out, calls = make('demo', f'RUN={run}', "DEMO_PARAMS=-p epochs 3")   # new parameters: runs again, into a third notebook
    assert [c[1] for c in calls] == [f'{run}/pretrain-3.ipynb'] and calls[0][-2:] == ['epochs', '3']


def test_experiment_creates_its_folder_and_never_replaces(make, tmp_path):
    out_dir = tmp_path / 'fresh' / 'figures'
    for n in ('', '-2'):
        _, calls = make('experiment', 'EXP=paper_figures', f'OUT={out_dir}', "PARAMS=-p seed 1")
        assert calls == [['nbs/experiments/paper_figures.ipynb', f'{out_dir}/paper_figures{n}.ipynb', '--log-output', '-p', 'seed', '1']]
    assert sorted(p.name for p in out_dir.iterdir()) == ['paper_figures-2.ipynb', 'paper_figures.ipynb']
