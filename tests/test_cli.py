"""Self-explaining entry points: every command's --help (type, default, description of each parameter), every experiment
notebook's parameters under `papermill --help-notebook`, and a notebook that refuses a parameter it does not have."""
import ast, json, re, subprocess, sys
from pathlib import Path
import pytest
from helpers import REPO, run

NOTEBOOKS = sorted((REPO / 'nbs' / 'experiments').glob('*.ipynb'))



def papermill(*args):
    return subprocess.run([str(Path(sys.executable).parent / 'papermill'), *map(str, args), '--no-progress-bar'], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_train_help_lists_every_config_field_with_type_default_and_description():
    from triplet_ssl.cli import params_of, show_value
    from triplet_ssl.config import CONFIG_GROUPS
    from triplet_ssl.train import Config
    r = run('-m', 'triplet_ssl.train', '--help')
    assert r.returncode == 0 and r.stderr == '', r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith('usage: python -m triplet_ssl.train')
    groups = [l[:-1] for l in lines if re.fullmatch(r'[a-z][a-z ]*:', l)]
    assert groups == list(CONFIG_GROUPS), groups            # the README table's groups, in order, and no 'other'
    for p in params_of(Config):
        i = next((i for i, l in enumerate(lines) if l.startswith('  ') and l.split()[:1] == [p['name']]), None)
        assert i is not None, f"{p['name']} missing from --help"
        assert re.match(rf"\s+{p['name']}\s+{re.escape(p['type'])}\s+{re.escape(show_value(p['default']))}(\s|$)", lines[i]), lines[i]
        rest = __import__('itertools').takewhile(lambda l: l.startswith(' ' * 6), lines[i + 1:])   # a wrapped description
        if p['doc']: assert ' '.join(' '.join([lines[i], *rest]).split()).endswith(' '.join(p['doc'].split())), lines[i]
    assert re.search(r'^\s+deputy\s+any\s+\[2, 10\]\s+.median.', r.stdout, re.M)
    assert re.search(r'^\s+lr\s+float\s+0\.1\s+peak learning rate', r.stdout, re.M)


@pytest.mark.parametrize('command, expected', [
    (['triplet_ssl.linear', '--help'], [r'protocol\s+str\s+linear\s+.linear. \(paper\)', r'label_fraction\s+float \| None\s+None\s+fraction of the labelled split']),
    (['triplet_ssl.interop', '--help'], [r'CKPT\s+path\s+required\s+this package', r'arch\s+str\s+None\s+export']),
    (['triplet_ssl.detectron2_runner', 'train', '--help'], [r'--gpus GPUS\s+GPUs \(processes\) on this machine \(int, default 1\)',
                                                    r'config\s+detectron2 config file', r'--eval-only\s+evaluate the weights without training \(flag\)']),
    (['triplet_ssl.detectron2_runner', 'export', '--help'], [r'out\s+the detectron2 \.pkl to write \(str\)']),
    (['triplet_ssl.reid', '--help'], [r'--batch-size BATCH_SIZE\s+images per forward pass \(int, default 128\)',
                                      r'test_root\s+sysu_test_set_all/']),
])
def test_other_commands_help(command, expected):
    r = run('-m', *command, env={**__import__('os').environ, 'COLUMNS': '200'})
    assert r.returncode == 0, r.stderr
    for pattern in expected: assert re.search(pattern, r.stdout), (pattern, r.stdout)


def test_reid_command_fails_clearly():
    r = run('-m', 'triplet_ssl.reid', 'no_such.pt', 'no_such_root')
    assert r.returncode == 1 and r.stderr.strip() == "error: Checkpoint 'no_such.pt' does not exist.", r.stderr


def parameters_cell(nb: Path) -> tuple[str, dict]:
    cells = json.loads(nb.read_text())['cells']
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    return ''.join(cells[i + 1]['source']), {n.target.id: n for n in ast.parse(''.join(cells[i]['source'])).body if isinstance(n, ast.AnnAssign)}


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_a_type_and_description_for_every_parameter(nb):
    import papermill
    check, declared = parameters_cell(nb)
    assert 'check_parameters(globals())' in check, 'the cell after the parameters cell checks them'
    seen = {p['name']: p for p in papermill.inspect_notebook(str(nb)).values()}
    assert set(seen) == set(declared), set(seen) ^ set(declared)   # none lost to papermill's line parser
    for name, p in seen.items():
        assert p['inferred_type_name'] not in ('None', '') and p['help'], (nb.name, p)


@pytest.mark.parametrize('nb, args, message', [
    ('pretrain', ['-f', 'configs/cpu_demo.yaml', '-p', 'depity', 'median'], "Unknown parameter 'depity' (did you mean 'deputy'?)"),
    ('linear_eval', ['-p', 'epoch', '1', '-p', 'colour', 'red'], "Unknown parameters 'colour', 'epoch' (did you mean 'epochs'?)"),
    ('reid', ['-p', 'chekpoint', 'x.pt'], "Unknown parameter 'chekpoint' (did you mean 'checkpoint'?)"),
])
def test_notebook_refuses_a_parameter_it_does_not_have(tmp_path, nb, args, message):
    r = papermill(f'nbs/experiments/{nb}.ipynb', tmp_path / 'out.ipynb', *args)
    assert r.returncode != 0 and message in r.stderr, r.stderr[-3000:]
    cells = json.loads((tmp_path / 'out.ipynb').read_text())['cells']
    ran = [c for c in cells if c['cell_type'] == 'code' and c.get('execution_count')]
    assert 'check_parameters' in ''.join(ran[-1]['source']), 'the run stopped at the check, before any work'


def test_notebook_accepts_its_own_parameters(tmp_path):
    # a declared name passes the check and reaches the code: here Config rejects the value, one cell later
    r = papermill('nbs/experiments/pretrain.ipynb', tmp_path / 'out.ipynb', '-f', 'configs/cpu_demo.yaml', '-p', 'deputy', 'bogus',
                  '-p', 'out_dir', tmp_path / 'run', '--inject-paths')
    assert r.returncode != 0 and 'Unknown parameter' not in r.stderr and 'bogus' in r.stderr, r.stderr[-3000:]
    cells = json.loads((tmp_path / 'out.ipynb').read_text())['cells']
    assert any('check_parameters' in ''.join(c['source']) and c.get('execution_count') and not any(o.get('output_type') == 'error' for o in c['outputs'])
               for c in cells)
