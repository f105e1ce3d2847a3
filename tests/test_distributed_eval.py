"""Evaluation as one job over 2 gloo processes (`torchrun ... -m triplet_ssl.linear`) equals one process.

kNN: exactly (the same top-1 and top-5). Linear and fine-tuning, on the same global batch (64 = 2 x 32 vs 1 x 64):
both see the same images in the same global batches with the same seeded crops, so the only difference is the float
rounding of the gradient average (DDP all-reduces two half-batch means; one process takes one mean of 64) and, when
fine-tuning, of SyncBN's statistics. Measured with these settings, 3 repetitions each with a busy-loop process beside
them on the already loaded 2-core machine (load average ~6): per-epoch losses differ by at most 1.6e-8 (linear) and
5.2e-8 (fine-tuning) relative, identically in every repetition (the CPU runs are deterministic), with the same
top-1, top-5 and train top-1. A wrong reduction is far off: doubling the learning rate (what summing instead of
averaging the gradients does) moves the first epoch's loss by 4e-3 (linear) and 9e-3 (fine-tuning) relative. The
test allows 1e-5 relative on each epoch's loss and one image on each accuracy.
"""
import json, subprocess, sys
from pathlib import Path
import pytest
import torch

from helpers import ENV, REPO
ENV = {**ENV, 'OMP_NUM_THREADS': '1'}
TEST_SIZE = 301   # odd: the two processes' test shards differ in length


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    "A seeded narrow_resnet in this package's checkpoint format (a random backbone: features enough to compare runs)."
    from triplet_ssl.models import build_backbone
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'c.pt'
    torch.save(dict(model={f'backbone.{k}': v for k, v in build_backbone('narrow_resnet', 1).state_dict().items()},
                    config=dict(arch='narrow_resnet'), step=1), path)
    return path


def one_process(checkpoint, out, **params):
    from triplet_ssl.linear import evaluate_checkpoint
    return evaluate_checkpoint(checkpoint, out_dir=str(out), num_workers=0, test_size=TEST_SIZE, log=None, **params)


def torchrun(checkpoint, out, **params):
    "The command line as a user runs it on 2 processes; returns (results.json, stdout)."
    args = [f'{k}={v}' for k, v in params.items()]
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'triplet_ssl.linear',
                        str(checkpoint), *args, 'num_workers=0', f'test_size={TEST_SIZE}', f'out_dir={out}'],
                       cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return json.loads((Path(out) / 'results.json').read_text()), r.stdout


def test_knn_two_processes_equal_one_exactly(checkpoint, tmp_path):
    one = one_process(checkpoint, tmp_path / 'one', protocol='knn', train_size=1001, batch_size=64)
    two, stdout = torchrun(checkpoint, tmp_path / 'two', protocol='knn', train_size=1001, batch_size=64)
    assert (two['top1'], two['top5']) == (one['top1'], one['top5'])
    assert (one['world_size'], two['world_size']) == (1, 2) and two['test_images'] == TEST_SIZE
    assert 20 < one['top1'] < 100   # a random narrow ResNet on Fashion-MNIST: above chance (10%), not trivially perfect
    assert 'knn: 1001 bank / 301 test images' in stdout and stdout.count('knn: top-1') == 1   # rank 0 reports, once


@pytest.mark.parametrize('protocol, params', [
    ('linear', dict(train_size=2048, lr=1.0)),
    ('finetune', dict(train_size=1280, label_fraction=0.1, lr=0.1, backbone_lr=0.01)),   # BN in train mode: SyncBN under DDP
])
def test_linear_and_finetune_two_processes_follow_one(checkpoint, tmp_path, protocol, params):
    batch = 64 if protocol == 'linear' else 32
    kw = dict(protocol=protocol, epochs=3, warmup_epochs=1, **params)
    one = one_process(checkpoint, tmp_path / 'one', batch_size=batch, **kw)
    two, stdout = torchrun(checkpoint, tmp_path / 'two', batch_size=batch // 2, **kw)
    assert f'global batch {batch} = {batch // 2} per process × 2 process(es)' in stdout
    assert (two['world_size'], two['global_batch'], two['batch_per_process']) == (2, batch, batch // 2)
    assert (one['world_size'], one['global_batch']) == (1, batch) and two['train_images'] == one['train_images']
    losses = [r['loss'] for r in one['epochs']]
    assert losses[-1] < losses[0]   # the classifier learns: the comparison is not of two idle runs
    for a, b in zip(one['epochs'], two['epochs']):
        assert b['loss'] == pytest.approx(a['loss'], rel=1e-5), (one['epochs'], two['epochs'])
        assert abs(b['train_top1'] - a['train_top1']) <= 100 / one['train_images'] + 1e-9
    assert abs(two['top1'] - one['top1']) <= 100 / TEST_SIZE + 1e-9 and abs(two['top5'] - one['top5']) <= 100 / TEST_SIZE + 1e-9


def test_in_training_knn_uses_every_process(tmp_path):
    """The trainer's kNN on 2 processes (each embeds its share) equals one process's at epoch 0, where both hold the same
    seeded weights; with the online probe on, the last epoch's row has the probe's test top-1 (rank 0's probe)."""
    from triplet_ssl.train import Config, run, train
    from triplet_ssl.runs import read_metrics
    tiny = dict(train_size=256, knn_bank_size=301, knn_test_size=203, proj_hidden=64, proj_dim=32, pred_hidden=64, num_workers=0,
                max_steps=1, knn_every=0, online_linear=True)
    two = read_metrics(run(Config(**tiny, batch_size=32, out_dir=str(tmp_path / 'two')), gpus=2))
    one = read_metrics(train(Config(**tiny, batch_size=64, out_dir=str(tmp_path / 'one')), progress=False))
    assert [r['epoch'] for r in two] == [0, 1] == [r['epoch'] for r in one]
    assert two[0]['knn_top1'] == one[0]['knn_top1'] and 15 < one[0]['knn_top1'] < 100
    assert 0 <= two[1]['online_linear_top1'] <= 100 and 'knn_top1' in two[1]
