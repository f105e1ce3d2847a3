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
    (['triplet_ssl.interop', '--help'], [r'export\s+write the backbone as a torchvision', r'inspect\s+print the format']),
    (['triplet_ssl.interop', 'export', '--help'], [r'CKPT\s+this package', r"arch\s+the backbone's arch"]),
    (['triplet_ssl.interop', 'inspect', '--help'], [r'CKPT\s+this package']),
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


PARSE = __import__('argparse').ArgumentParser.parse_known_args


def console_scripts() -> dict:
    "settings.ini's console_scripts: {name: 'module:function'}."
    import configparser
    ini = configparser.ConfigParser(); ini.read(REPO / 'settings.ini')
    return dict(s.split('=', 1) for s in ini['DEFAULT']['console_scripts'].split())


def call(entry: str, args: list, monkeypatch) -> tuple:
    """Run a console script's function in this process with `args`: (exit status, stdout, stderr, the argparse parser of
    the (sub)command that parsed last, or None)."""
    import argparse, contextlib, importlib, io
    module, name = entry.split(':')
    parsers = []
    def spy(self, *a, **k):
        parsers.append(self)
        return PARSE(self, *a, **k)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', spy)
    monkeypatch.setenv('COLUMNS', '200')   # one row per parameter
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: status = getattr(importlib.import_module(module), name)(args)
        except SystemExit as e: status = e.code
    return status or 0, out.getvalue(), err.getvalue(), parsers[-1] if parsers else None


def undocumented_rows(text: str) -> list[str]:
    "Rows of a `cli.format_help` table whose description is empty or '-'."
    lines = text.splitlines()
    header = next(l for l in lines if l.split() == ['name', 'type', 'default', 'description'])
    col = header.index('description')
    rows = [l for l in lines[lines.index(header) + 1:] if l.startswith('  ') and l[2] != ' ']
    assert rows, text
    return [r for r in rows if r[col:].strip() in ('', '-')]


@pytest.mark.parametrize('script', sorted(console_scripts()))
def test_every_console_script_and_subcommand_describes_every_parameter(script, monkeypatch):
    from triplet_ssl.cli import params_of
    entry = console_scripts()[script]
    status, out, err, parser = call(entry, ['--help'], monkeypatch)
    assert status == 0 and out.startswith('usage: ') and err == '', (status, out, err)
    if parser is None:   # a key=value command: cli.format_help's table
        assert not undocumented_rows(out), undocumented_rows(out)
        names = {r.split()[0] for r in out.splitlines() if r.startswith('  ') and r[2] != ' '}
        note = ' '.join(out.split('Parameters are key=value', 1)[1].split('sets many at once')[0].split())
        examples = re.findall(r'(\w+)=', note)
        assert examples and set(examples) <= names, (examples, 'the examples name this command\'s own keys')
        return
    todo = [([], parser)]
    while todo:
        args, p = todo.pop()
        for action in p._actions:
            if action.dest == 'help': continue
            if hasattr(action, 'choices') and isinstance(action.choices, dict):   # subcommands
                described = {a.dest: a.help for a in action._choices_actions}
                for sub in action.choices:
                    assert described.get(sub), f"{script} {sub}: no description"
                    status, out, err, subparser = call(entry, [*args, sub, '--help'], monkeypatch)
                    assert status == 0 and out.startswith('usage: ') and err == '', (sub, status, out, err)
                    assert subparser is action.choices[sub] or subparser.prog == action.choices[sub].prog, (sub, subparser.prog)
                    todo.append(([*args, sub], subparser))
            else: assert (action.help or '').strip(), f"{script} {' '.join(args)}: {action.dest} has no description"


def test_help_anywhere_on_the_line(monkeypatch):
    "`--help` after other arguments shows the help too, instead of being read as a checkpoint or an override."
    for entry, args in [('triplet_ssl.linear:main', ['some.pt', '--help']), ('triplet_ssl.train:main', ['cpu_demo', '--help']),
                        ('triplet_ssl.interop:main', ['inspect', '--help'])]:
        status, out, err, _ = call(entry, args, monkeypatch)
        assert status == 0 and out.startswith('usage: ') and 'error' not in err, (entry, status, out, err)


@pytest.mark.parametrize('entry, args, blamed', [
    ('triplet_ssl.train:main', ['cpu_demo', 'learning_rate=0.1'], "['learning_rate'] on the command line (learning_rate: did you mean lr?)"),
    ('triplet_ssl.linear:main', ['no_such.pt', 'linear/short', 'wd=0.1'], "['wd'] on the command line (wd: did you mean weight_decay?)"),
])
def test_a_misspelt_key_is_blamed_on_the_command_line(entry, args, blamed, monkeypatch):
    status, out, err, _ = call(entry, args, monkeypatch)
    assert str(status).startswith('error: Unknown parameter(s) ') and blamed in status and '.yaml' not in status.split(';')[0], status
