"""`truncated_triplet_loss` across 2 gloo processes on the CPU equals one process with the whole batch.

Reduction: each process's loss is the mean over its N local rows, so the mean of the 2 processes'
losses is the single-process mean over 2N rows, and a process's gradient is 2x (world size x) the
single-process gradient for its rows (DDP divides summed gradients by the world size the same way).
With `negatives="global"` and targets that require grad, the differentiable gather also sums the
other process's gradient for this process's targets, so those match 2x the single-process gradient too.
"""
import torch
import pytest
from helpers import spawn_ranks

from triplet_ssl.losses import truncated_triplet_loss

WORLD, N, D = 2, 12, 8
DEPUTIES = [(2, 10), 'median', 'hardest', 0.25, (3, 20)]   # (3, 20) needs the other process's negatives


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(WORLD * N, D, generator=g), torch.randn(WORLD * N, D, generator=g)


def run_loss(pred, target, deputy, negatives, target_grad):
    "Loss and the gradients w.r.t. pred and (when it requires grad) target."
    p, t = pred.clone().requires_grad_(), target.clone().requires_grad_(target_grad)
    loss = truncated_triplet_loss(p, t, deputy=deputy, negatives=negatives)
    loss.backward()
    return loss.detach(), p.grad, t.grad


def worker(rank):
    "This rank's results (its slice of the batch, global negatives gathered from every rank)."
    pred, target = batch()
    mine = slice(rank * N, (rank + 1) * N)
    results = {}
    for deputy in DEPUTIES:
        for target_grad in (False, True):
            results['global', deputy, target_grad] = run_loss(pred[mine], target[mine], deputy, 'global', target_grad)
        if deputy != (3, 20):
            results['local', deputy] = run_loss(pred[mine], target[mine], deputy, 'local', True)
    return results


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    return spawn_ranks(worker, WORLD, tmp_path_factory.mktemp('ddp'))


@pytest.mark.parametrize('deputy', DEPUTIES)
@pytest.mark.parametrize('target_grad', [False, True])
def test_global_negatives_equal_one_process(ranks, deputy, target_grad):
    pred, target = batch()
    loss, p_grad, t_grad = run_loss(pred, target, deputy, 'local', target_grad)
    per_rank = [r['global', deputy, target_grad] for r in ranks]
    torch.testing.assert_close(torch.stack([l for l, _, _ in per_rank]).mean(), loss)
    torch.testing.assert_close(torch.cat([g for _, g, _ in per_rank]) / WORLD, p_grad)
    if target_grad: torch.testing.assert_close(torch.cat([g for _, _, g in per_rank]) / WORLD, t_grad)
    else: assert all(g is None for _, _, g in per_rank)


@pytest.mark.parametrize('deputy', [d for d in DEPUTIES if d != (3, 20)])
def test_local_negatives_equal_each_half(ranks, deputy):
    pred, target = batch()
    for rank, r in enumerate(ranks):
        mine = slice(rank * N, (rank + 1) * N)
        for got, want in zip(r['local', deputy], run_loss(pred[mine], target[mine], deputy, 'local', True)):
            torch.testing.assert_close(got, want)


def test_global_differs_from_local(ranks):
    "Guards against the gather silently not happening: the deputy ranks differ with 2x the negatives."
    assert not torch.allclose(ranks[0]['global', (2, 10), False][0], ranks[0]['local', (2, 10)][0])
