"""The package as a user installs it: the sdist builds (it carries settings.ini), the wheel built from it installs into a fresh
virtual environment, and there the console scripts answer --help and train from a shipped preset in any folder, on the
shipped Fashion-MNIST sample."""
import json, os, subprocess, sys, sysconfig, tarfile, zipfile
from pathlib import Path
import pytest

from helpers import REPO
# Smaller than helpers.TINY: the installed package trains 2 steps on the shipped sample (256 images, narrower heads).
TINY_INSTALLED = ['max_steps=2', 'train_size=256', 'batch_size=64', 'knn_bank_size=100', 'knn_test_size=100', 'proj_hidden=32', 'proj_dim=16',
        'pred_hidden=32', 'num_workers=0']


def sh(*args, **kw):
    r = subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=kw.pop('timeout', 600), **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    "A fresh venv holding the wheel (built from the sdist); the dependencies come from this venv's site-packages through a .pth file."
    tmp = tmp_path_factory.mktemp('pkg')
    dist = tmp / 'dist'
    # sdist first, then the wheel from the unpacked sdist: what pip does with a source release
    sh(sys.executable, '-m', 'build', '--sdist', '--wheel', '--no-isolation', '--outdir', dist, REPO, cwd=tmp, env=clean_env())
    env = tmp / 'venv'
    sh(sys.executable, '-m', 'venv', '--without-pip', env)
    py = env / 'bin' / 'python'
    site = Path(sh(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    sh(sys.executable, '-m', 'pip', '--python', py, 'install', '--no-deps', '--no-index', *dist.glob('*.whl'), cwd=tmp, env=clean_env())
    # then torch & co. from this venv (after the install: pip would take this venv's editable triplet_ssl for the wheel's)
    (site / 'shared_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    return tmp, env, dist


def clean_env(**extra):
    return {**{k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}, **extra}


def test_sdist_and_wheel_contents(venv):
    tmp, env, dist = venv
    (sdist,), (wheel,) = dist.glob('*.tar.gz'), dist.glob('*.whl')
    names = tarfile.open(sdist).getnames()
    root = names[0].split('/')[0]
    for f in ('settings.ini', 'setup.py', 'README.md', 'configs/cpu_demo.yaml', 'data/fashion-mnist-sample/train-images-idx3-ubyte.gz'):
        assert f'{root}/{f}' in names, f
    wheel_names = zipfile.ZipFile(wheel).namelist()
    for f in ('triplet_ssl/cli.py', 'triplet_ssl/assets/configs/cpu_demo.yaml', 'triplet_ssl/assets/configs/linear/short.yaml',
              'triplet_ssl/assets/fashion-mnist-sample/t10k-labels-idx1-ubyte.gz'):
        assert f in wheel_names, f
    scripts = zipfile.ZipFile(wheel).read(next(n for n in wheel_names if n.endswith('entry_points.txt'))).decode()
    for name, module in (('train', 'train'), ('linear', 'linear'), ('interop', 'interop'), ('detection', 'detectron2_runner'), ('reid', 'reid')):
        assert f'triplet-ssl-{name} = triplet_ssl.{module}:main' in scripts


def test_console_scripts_from_an_installed_wheel(venv):
    tmp, env, _ = venv
    work = tmp / 'anywhere'; work.mkdir(exist_ok=True)
    r = sh(env / 'bin' / 'python', '-c', 'import triplet_ssl, triplet_ssl.data as d; print(triplet_ssl.__file__); print(d.BUNDLED_FASHION_MNIST)',
           cwd=work, env=clean_env())
    module, sample = r.stdout.split()
    assert module.startswith(str(env)) and sample.startswith(str(env)), r.stdout   # the wheel's copy, not this checkout
    for name in ('train', 'linear', 'interop', 'detection', 'reid'):
        sub = {'detection': ['train'], 'interop': ['export']}.get(name, [])   # commands with subcommands: one of them
        r = sh(env / 'bin' / f'triplet-ssl-{name}', *sub, '--help', cwd=work, env=clean_env())
        assert 'usage:' in r.stdout and any(w in r.stdout for w in ('default', 'required', 'positional arguments')), (name, r.stdout)
    # a shipped preset found by name, trained for 2 steps on the shipped sample, from a folder that is not a clone
    r = sh(env / 'bin' / 'triplet-ssl-train', 'cpu_demo', f'out_dir={work / "run"}', f'data_dir={sample}', *TINY_INSTALLED, cwd=work, env=clean_env())
    rows = [json.loads(l) for l in (work / 'run' / 'metrics.jsonl').read_text().splitlines()]
    assert rows[-1]['step'] == 2 and 'knn_top1' in rows[-1], rows
    assert (work / 'run' / 'checkpoint-00000002.pt').is_file()
    saved = (work / 'run' / 'config.yaml').read_text()
    assert 'deputy:' in saved and 'max_steps: 2' in saved
