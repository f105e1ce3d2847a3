"""The two entry points a researcher uses: the command line and the papermill experiment notebook."""
import json, subprocess, sys
from pathlib import Path
import pytest

from helpers import REPO, run, tiny
TINY_3_STEPS_KNN = tiny(batch_size=64, max_steps=3, knn_bank_size=500, knn_test_size=200, num_workers=0)


def test_cli_trains_from_yaml_with_overrides(tmp_path):
    r = run('-m', 'triplet_ssl.train', 'configs/cpu_demo.yaml', f'out_dir={tmp_path}', 'deputy=median',
            *[f'{k}={v}' for k, v in TINY_3_STEPS_KNN.items()])
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in rows] == [0, 1] and rows[1]['step'] == 3
    saved = (tmp_path / 'config.yaml').read_text()
    assert 'deputy: median' in saved and 'train_size: 512' in saved
    assert (tmp_path / 'checkpoint-00000003.pt').is_file() and not list(tmp_path.glob('*.tmp'))


@pytest.mark.parametrize('args, message', [
    (['arch=resnet19'], "Unknown arch 'resnet19'"),
    (['deputy=[2, 10]', 'batch_size=8'], 'needs at least 10 negatives'),
    (['lrr=0.1'], "Unknown parameter(s) ['lrr']"),
    (['configs/no_such.yaml'], 'does not exist'),
])
def test_cli_rejects_bad_parameters_clearly(args, message):
    r = run('-m', 'triplet_ssl.train', *args)
    assert r.returncode != 0 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


def test_cli_missing_dataset_root(tmp_path):
    r = run('-m', 'triplet_ssl.train', f'out_dir={tmp_path}', 'data_dir=/no/such/root', *[f'{k}={v}' for k, v in TINY_3_STEPS_KNN.items()])
    assert r.returncode != 0 and "'/no/such/root' does not exist" in r.stderr and 'Traceback' not in r.stderr


def test_presets_load():
    sys.path.insert(0, str(REPO))
    from triplet_ssl.train import load_config
    for preset in sorted((REPO / 'configs').glob('*.yaml')):
        load_config(preset)


def test_pretrain_notebook_runs_with_papermill(tmp_path):
    out = tmp_path / 'run'
    params = [a for k, v in {**TINY_3_STEPS_KNN, 'out_dir': str(out)}.items() for a in ('-p', k, str(v))]
    r = subprocess.run([str(Path(sys.executable).parent / 'papermill'), 'nbs/experiments/pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-f', 'configs/cpu_demo.yaml', *params, '--no-progress-bar'],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (out / 'curves.png').stat().st_size > 10_000
    executed = (tmp_path / 'executed.ipynb').read_text()
    assert 'knn_top1_final' in executed and 'knn_top1_epoch0' in executed


def test_pretrain_notebook_launches_two_processes(tmp_path):
    "gpus=2 on a CPU machine: the notebook starts 2 gloo workers through torch.distributed's launcher."
    out = tmp_path / 'run'
    params = [a for k, v in {**TINY_3_STEPS_KNN, 'batch_size': 32, 'out_dir': str(out), 'gpus': 2, 'sync_bn': True}.items() for a in ('-p', k, str(v))]
    r = subprocess.run([str(Path(sys.executable).parent / 'papermill'), 'nbs/experiments/pretrain.ipynb',
                        str(tmp_path / 'executed.ipynb'), '-f', 'configs/cpu_demo.yaml', *params, '--no-progress-bar'],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    meta = json.loads((out / 'run.json').read_text())
    assert meta['processes'] == 2 and meta['global_batch'] == 64
    assert (out / 'curves.png').is_file() and "'processes': 2" not in r.stderr
