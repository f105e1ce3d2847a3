"""Evaluation end to end: linear and fine-tuning protocols from the command line on checkpoints in each format,
torchvision export, subset files, and the evaluation / figure notebooks under papermill on tiny data."""
import json, subprocess
import pytest
import torch
from torch import nn

from helpers import BIN, ENV, REPO, tiny
from helpers import run_quiet as run
TINY_3_STEPS = tiny(batch_size=64, max_steps=3, num_workers=0, knn_every=0)


def papermill(nb, out, **params):
    args = [a for k, v in params.items() for a in (('-y', f'{k}: {v}') if isinstance(v, list) else ('-p', k, str(v)))]
    return subprocess.run([BIN / 'papermill', f'nbs/experiments/{nb}', str(out), *args, '--no-progress-bar'], cwd=REPO,
                          capture_output=True, text=True, timeout=900, env=ENV)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A 3-step narrow_resnet run on Fashion-MNIST, as the trainer writes it."
    from triplet_ssl.train import load_config, train
    out = tmp_path_factory.mktemp('run')
    train(load_config(out_dir=str(out), **TINY_3_STEPS), progress=False)
    return out


def test_linear_cli_on_a_run_checkpoint(tiny_run, tmp_path):
    ckpt = next(tiny_run.glob('checkpoint-*.pt'))
    r = run('-m', 'triplet_ssl.linear', ckpt, 'protocol=linear_features', 'train_size=2000', 'test_size=500', 'epochs=5',
            'num_workers=0', f'out_dir={tmp_path}')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'results.json').read_text())
    assert res['protocol'] == 'linear_features' and 40 < res['top1'] <= 100 and res['top5'] >= res['top1']   # chance: 10%
    assert 'linear_features: top-1' in r.stdout


@pytest.mark.parametrize('args, message', [
    (['protocol=kNN'], "Unknown protocol 'kNN'"),
    (['label_fraction=5'], 'label_fraction must be in (0, 1]'),
    (['lrr=0.1'], "Unknown parameter(s) ['lrr']"),
])
def test_linear_cli_rejects_bad_parameters(tiny_run, args, message):
    r = run('-m', 'triplet_ssl.linear', next(tiny_run.glob('checkpoint-*.pt')), *args)
    assert r.returncode != 0 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


def test_linear_cli_missing_checkpoint():
    r = run('-m', 'triplet_ssl.linear', '/no/such.pt', 'protocol=linear_features')
    assert r.returncode != 0 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_subset_lists_are_deterministic_across_processes(tiny_run, tmp_path):
    ckpt = next(tiny_run.glob('checkpoint-*.pt'))
    files = []
    for name in ('a', 'b'):
        r = run('-m', 'triplet_ssl.linear', ckpt, 'protocol=finetune', 'label_fraction=0.01', 'train_size=3000', 'test_size=200',
                'epochs=1', 'batch_size=16', 'num_workers=0', f'out_dir={tmp_path / name}')
        assert r.returncode == 0, r.stderr[-3000:]
        files.append((tmp_path / name / 'labels_1pct_seed0.txt').read_text())
    assert files[0] == files[1]
    idx = [int(l) for l in files[0].splitlines() if not l.startswith('#')]
    assert len(idx) == 30 and len(set(idx)) == 30   # 1% of 3000, class-balanced: 3 per class when balanced
    from triplet_ssl.linear import class_balanced_subset
    assert not torch.equal(class_balanced_subset(torch.arange(3000) % 10, 0.01, 0), class_balanced_subset(torch.arange(3000) % 10, 0.01, 1))


def test_linear_protocol_separates_a_linearly_separable_fixture():
    "The paper's protocol (augmented, frozen backbone in eval mode) reaches > 90% where a linear layer can."
    from triplet_ssl.data import ImageDataset
    from triplet_ssl.linear import EvalConfig, linear_eval
    def data(n, seed):
        g = torch.Generator().manual_seed(seed); y = torch.arange(n) % 4
        x = torch.randint(0, 50, (n, 3, 20, 20), generator=g, dtype=torch.uint8)
        x[y == 3] += 120; x[torch.arange(n)[y < 3], y[y < 3]] += 150   # 3 colours and 'all bright'
        return ImageDataset(x, y)
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()); bb.feature_dim = 16
    res, _ = linear_eval(bb, data(400, 0), data(200, 1), 4, EvalConfig(epochs=15, batch_size=32, lr=0.5, warmup_epochs=1, num_workers=0),
                         dict(size=20, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3), log=None)
    assert res['top1'] > 90, res['top1']


def test_export_loads_into_torchvision(tmp_path):
    "A resnet50 run checkpoint exports to a state_dict torchvision's resnet50 loads with only fc missing."
    import torchvision
    from triplet_ssl.models import build_backbone
    torch.manual_seed(0)
    net = build_backbone('resnet50', 3)
    torch.save(dict(model={f'backbone.{k}': v for k, v in net.state_dict().items()}, config=dict(arch='resnet50'), step=1), tmp_path / 'c.pt')
    r = run('-m', 'triplet_ssl.interop', 'export', tmp_path / 'c.pt', tmp_path / 'r50.pth')
    assert r.returncode == 0, r.stderr[-2000:]
    sd = torch.load(tmp_path / 'r50.pth', weights_only=True)
    tv = torchvision.models.resnet50()
    result = tv.load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight'] and not result.unexpected_keys
    assert torch.equal(tv.layer4[2].conv3.weight, net.layer4[2].conv3.weight)


def test_authors_format_is_evaluated_from_the_command_line(tiny_run, tmp_path):
    "An OpenSelfSup/mmcv-style file (state_dict with backbone.*, neck.*, head.*, target_net.*) goes through the linear CLI."
    ckpt = torch.load(next(tiny_run.glob('checkpoint-*.pt')), weights_only=True)
    bb = {k[len('backbone.'):]: v for k, v in ckpt['model'].items() if k.startswith('backbone.')}
    mmcv = dict(meta=dict(epoch=3, mmcv_version='0.2.12'),
                state_dict={**{f'backbone.{k}': v for k, v in bb.items()}, **{f'target_net.0.{k}': v for k, v in bb.items()},
                            'neck.mlp.0.weight': torch.zeros(8, 128), 'head.predictor.mlp.0.weight': torch.zeros(8, 8)})
    torch.save(mmcv, tmp_path / 'authors.pth')
    r = run('-m', 'triplet_ssl.interop', 'inspect', tmp_path / 'authors.pth')
    assert r.returncode == 0 and 'openselfsup format' in r.stdout, r.stderr[-2000:]
    r = run('-m', 'triplet_ssl.linear', tmp_path / 'authors.pth', 'arch=narrow_resnet', 'protocol=linear_features', 'train_size=1000',
            'test_size=300', 'epochs=2', 'num_workers=0', f'out_dir={tmp_path / "eval"}')
    assert r.returncode == 0, r.stderr[-3000:]
    same = run('-m', 'triplet_ssl.linear', next(tiny_run.glob('checkpoint-*.pt')), 'protocol=linear_features', 'train_size=1000',
               'test_size=300', 'epochs=2', 'num_workers=0', f'out_dir={tmp_path / "eval2"}')
    assert same.returncode == 0, same.stderr[-3000:]
    top1 = lambda d: json.loads((tmp_path / d / 'results.json').read_text())['top1']
    assert top1('eval') == top1('eval2')   # the same backbone weights, whatever the file format
    r = run('-m', 'triplet_ssl.linear', tmp_path / 'authors.pth', 'protocol=linear_features')
    assert r.returncode != 0 and 'pass arch=' in r.stderr


def test_linear_eval_and_semi_supervised_notebooks(tiny_run, tmp_path):
    r = papermill('linear_eval.ipynb', tmp_path / 'l.ipynb', run_dir=tiny_run, train_size=500, test_size=200, epochs=1, num_workers=0,
                  out_dir=tmp_path / 'lin')
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads((tmp_path / 'lin' / 'results.json').read_text())['protocol'] == 'linear'
    r = papermill('semi_supervised.ipynb', tmp_path / 's.ipynb', run_dir=tiny_run, train_size=1000, test_size=200, epochs=1,
                  num_workers=0, out_dir=tmp_path / 'semi')
    assert r.returncode == 0, r.stderr[-4000:]
    table = (tmp_path / 'semi' / 'results.md').read_text()
    assert 'labels_1pct_seed0.txt' in table and '| random init |' in table
    assert (tmp_path / 'semi' / 'pretrained_10pct' / 'labels_10pct_seed0.txt').is_file()


def test_learning_efficiency_and_figures_notebooks(tmp_path):
    figs = tmp_path / 'figures'
    r = papermill('learning_efficiency.ipynb', tmp_path / 'e.ipynb', train_size=256, epochs=1, batch_size=64, seeds=[0],
                  knn_bank_size=100, knn_test_size=100, momentum_check=0.9, num_workers=0, out_root=tmp_path / 'eff', figures_dir=figs)
    assert r.returncode == 0, r.stderr[-4000:]
    table = (figs / 'learning_efficiency.md').read_text()
    for name in ('triplet median', 'triplet (2,10)', 'BYOL', 'SimCLR', 'MoCo v2', 'triplet (2,10), EMA m0=0.9'): assert f'| {name} |' in table, table
    assert (figs / 'learning_efficiency.png').stat().st_size > 10_000
    r = papermill('paper_figures.ipynb', tmp_path / 'f.ipynb', efficiency_root=tmp_path / 'eff', figure_run=tmp_path / 'fig_run',
                  train_size=256, epochs=1, batch_size=64, checkpoint_every=2, stat_batches=2, tsne_points=100, tsne_perplexity=10.0,
                  figures_dir=figs)
    assert r.returncode == 0, r.stderr[-4000:]
    for name in ('tsne.png', 'similarity_distribution.png'): assert (figs / name).stat().st_size > 10_000, name
    assert '| triplet (2,10), EMA m0=0.9 |' in (tmp_path / 'f.ipynb').read_text()   # the recorded runs, named from their configs
