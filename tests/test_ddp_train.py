"""Distributed training on the CPU (gloo) matches one process; runs stop on SIGTERM and resume."""
import json, signal, subprocess, sys, time
import pytest

from helpers import REPO, tiny
from triplet_ssl.train import Config, load_config, run, train, build_model
from triplet_ssl.runs import read_metrics, load_checkpoint, list_checkpoints
from triplet_ssl.optim import build_optimizer, lr_at

TINY_SYNC_BN = tiny(num_workers=0, max_steps=4, log_every=1, knn_every=0, sync_bn=True, deputy=(2, 10), lr=0.05)   # each test sets batch_size
# In float64 the two computations differ only by reduction order: measured (4 steps, both modes, repeated runs on a loaded
# 2-core machine) at most 3e-16 relative in the losses and 1.4e-13 absolute in any weight or BN statistic, against updates of
# order 0.5. The tolerances sit three or more orders above that and many below any real bug (see the last test).
LOSS_RTOL, WEIGHT_ATOL = 1e-12, 1e-10


def final_weights(out):
    return load_checkpoint(list_checkpoints(out)[-1])['model']


def max_weight_diff(a, b):
    wa, wb = final_weights(a), final_weights(b)
    return max((wa[k] - wb[k]).abs().max().item() for k in wa if wa[k].dtype.is_floating_point)


@pytest.mark.parametrize('negatives', ['global', 'local'])
def test_two_processes_follow_one(tmp_path, negatives):
    """2 gloo processes x 32 images with SyncBN == 1 process x 64 images, in float64 (precision='fp64'); with local
    negatives the single process mines within each half of its batch (mining_groups=2), as each of the 2 processes does."""
    ddp = run(Config(**TINY_SYNC_BN, precision='fp64', batch_size=32, negatives=negatives, out_dir=str(tmp_path / 'ddp')), gpus=2)
    one = train(Config(**TINY_SYNC_BN, precision='fp64', batch_size=64, negatives=negatives, mining_groups=2 if negatives == 'local' else 1,
                       out_dir=str(tmp_path / 'one')), progress=False)
    a, b = read_metrics(ddp, 'steps'), read_metrics(one, 'steps')
    assert [r['step'] for r in a] == [1, 2, 3, 4] == [r['step'] for r in b]
    for ra, rb in zip(a, b): assert ra['loss'] == pytest.approx(rb['loss'], rel=LOSS_RTOL, abs=0), (a, b)
    assert len({round(r['loss'], 3) for r in a}) > 1   # the loss moves: the comparison is not trivially flat
    assert max_weight_diff(ddp, one) <= WEIGHT_ATOL
    assert json.loads((ddp / 'run.json').read_text())['global_batch'] == 64


def test_comparison_catches_a_reduction_bug(tmp_path):
    """Summing instead of averaging the gradients of 2 processes doubles each SGD update (as lr x 2 does in one process):
    the comparison above must see that by many orders of magnitude."""
    kw = dict(TINY_SYNC_BN, precision='fp64', batch_size=64, mining_groups=2)
    one = train(Config(**kw, out_dir=str(tmp_path / 'one')), progress=False)
    doubled = train(Config(**{**kw, 'lr': 2 * kw['lr']}, out_dir=str(tmp_path / 'doubled')), progress=False)
    loss_a, loss_b = read_metrics(one, 'steps')[-1]['loss'], read_metrics(doubled, 'steps')[-1]['loss']
    assert abs(loss_a - loss_b) / abs(loss_a) > 1e6 * LOSS_RTOL
    assert max_weight_diff(one, doubled) > 1e6 * WEIGHT_ATOL


def test_local_negatives_differ_from_global(tmp_path):
    "The two modes are really different computations (else the test above proves little)."
    g = train(Config(**{**TINY_SYNC_BN, 'max_steps': 1}, batch_size=64, negatives='global', out_dir=str(tmp_path / 'g')), progress=False)
    l = train(Config(**{**TINY_SYNC_BN, 'max_steps': 1}, batch_size=64, mining_groups=2, out_dir=str(tmp_path / 'l')), progress=False)
    assert abs(read_metrics(g, 'steps')[0]['loss'] - read_metrics(l, 'steps')[0]['loss']) > 1e6 * LOSS_RTOL * 200


def test_sigterm_checkpoints_and_resume(tmp_path):
    "Pre-emption: SIGTERM mid-run writes a checkpoint and stops; resume=auto finishes the run, each step logged once."
    out = tmp_path / 'run'
    args = [sys.executable, '-m', 'triplet_ssl.train', 'configs/cpu_demo.yaml', f'out_dir={out}', 'train_size=2048',
            'batch_size=64', 'max_steps=30', 'log_every=1', 'knn_bank_size=200', 'knn_test_size=100', 'num_workers=0',
            'proj_hidden=64', 'pred_hidden=64', 'proj_dim=32']
    p = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(read_metrics(out, 'steps')) < 3: time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0 and 'Stopped by SIGTERM' in err, err[-2000:]
    stopped = load_checkpoint(list_checkpoints(out)[-1])['step']
    assert 3 <= stopped < 30
    r = subprocess.run(args + ['resume=auto'], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'resuming at step {stopped}' in r.stdout
    assert load_checkpoint(list_checkpoints(out)[-1])['step'] == 30
    assert [row['step'] for row in read_metrics(out, 'steps')] == list(range(1, 31))


PRESETS = {  # what each preset must build: backbone arch, global batch (gpus x batch x accumulation), optimizer
    'imagenet_r50_200ep': ('resnet50', 6272, 'LARS', 200),
    'imagenet_r50_1000ep': ('resnet50', 6272, 'LARS', 1000),
    'cifar10_r18': ('resnet18_cifar', 256, 'LARS', 1000),
    'cpu_demo': ('narrow_resnet', 256, 'SGD', 2),
}


@pytest.mark.parametrize('name', PRESETS)
def test_presets_build_what_they_describe(name):
    import yaml
    raw = yaml.safe_load((REPO / 'configs' / f'{name}.yaml').read_text())
    cfg = load_config(REPO / 'configs' / f'{name}.yaml')
    arch, global_batch, opt_name, epochs = PRESETS[name]
    assert (cfg.arch, raw.get('gpus', 1) * cfg.batch_size * cfg.accum_steps, cfg.epochs) == (arch, global_batch, epochs)
    model = build_model(cfg, 3 if cfg.dataset != 'fashion_mnist' else 1)
    n = lambda m: sum(p.numel() for p in m.parameters())
    if arch == 'resnet50':   # the paper's network: R50 (23.5 M) + 2048-4096-256 projector + 256-4096-256 predictor
        assert n(model.backbone) == 23_508_032
        assert n(model.projector) == 2048 * 4096 + 4096 + 2 * 4096 + 4096 * 256 + 256
        assert n(model.predictor) == 256 * 4096 + 4096 + 2 * 4096 + 4096 * 256 + 256
        assert (cfg.sync_bn, cfg.multires, cfg.deputy, cfg.weight_decay, cfg.lr) == (True, True, (2, 10), 1e-6, 4.8)
        steps_per_epoch = 1_281_167 // global_batch   # ImageNet-1k train images
        warmup = round(cfg.warmup_epochs * steps_per_epoch)
        total = cfg.epochs * steps_per_epoch
        assert lr_at(warmup - 1, total, warmup, cfg.lr) == pytest.approx(4.8)
        assert lr_at(warmup + (total - warmup) // 2, total, warmup, cfg.lr) == pytest.approx(2.4, rel=1e-3)
        assert lr_at(total, total, warmup, cfg.lr) == pytest.approx(0.0, abs=1e-9)
    opt = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.sgd_momentum, cfg.weight_decay)
    assert type(opt).__name__ == opt_name
    decay, no_decay = opt.param_groups
    assert decay['weight_decay'] == cfg.weight_decay and no_decay['weight_decay'] == 0
    assert all(p.ndim == 1 for p in no_decay['params'])
