"""`TruncatedTripletLoss(gather_distributed=True)` across 2 gloo processes on the CPU: bit for bit the function
`truncated_triplet_loss(negatives='global')` on each process (values and gradients), and equal to one process holding
the whole batch (the mean of the 2 processes' losses; each process's gradient is 2x the single-process one for its rows,
as in tests/test_ddp_loss.py)."""
import torch
import pytest
from helpers import spawn_ranks

from triplet_ssl.losses import TruncatedTripletLoss, truncated_triplet_loss

pytestmark = pytest.mark.slow   # starts processes
WORLD, N, D = 2, 12, 8
DEPUTIES = [(2, 10), 'median', (3, 20)]   # (3, 20) needs the other process's negatives


def batch():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(WORLD * N, D, generator=g, dtype=torch.float64) for _ in range(4)]   # p0, z0, p1, z1


def grads(fn, *tensors):
    "fn's value and its gradients w.r.t. every input."
    xs = [t.clone().requires_grad_() for t in tensors]
    loss = fn(*xs)
    loss.backward()
    return [loss.detach(), *[x.grad for x in xs]]


def worker(rank):
    "This rank's results (its slice of the batch, global negatives gathered from every rank)."
    mine = slice(rank * N, (rank + 1) * N)
    p0, z0, p1, z1 = (x[mine] for x in batch())
    results = {}
    for deputy in DEPUTIES:
        crit = TruncatedTripletLoss(deputy, gather_distributed=True)
        results['module', deputy] = grads(crit, p0, z1)
        results['function', deputy] = grads(lambda p, t: truncated_triplet_loss(p, t, deputy=deputy, negatives='global'), p0, z1)
        results['symmetric', deputy] = grads(crit.symmetric, p0, z0, p1, z1)
    results['local'] = grads(TruncatedTripletLoss((2, 10)), p0, z1)
    return results


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    return spawn_ranks(worker, WORLD, tmp_path_factory.mktemp('ddp'))


@pytest.mark.parametrize('deputy', DEPUTIES)
def test_module_is_the_function_exactly(ranks, deputy):
    for r in ranks:
        for got, want in zip(r['module', deputy], r['function', deputy]): assert torch.equal(got, want)


@pytest.mark.parametrize('deputy', DEPUTIES)
def test_gathered_module_equals_one_process(ranks, deputy):
    p0, z0, p1, z1 = batch()
    crit = TruncatedTripletLoss(deputy)   # one process, the whole batch: its negatives are every process's
    for key, fn, inputs in [('module', crit, (p0, z1)), ('symmetric', crit.symmetric, (p0, z0, p1, z1))]:
        want = grads(fn, *inputs)
        per_rank = [r[key, deputy] for r in ranks]
        torch.testing.assert_close(torch.stack([r[0] for r in per_rank]).mean(), want[0])
        for i, g in enumerate(want[1:], 1): torch.testing.assert_close(torch.cat([r[i] for r in per_rank]) / WORLD, g)


def test_gather_happened(ranks):
    "The gathered loss differs from the local one: the deputy ranks change with twice the negatives."
    assert not torch.allclose(ranks[0]['module', (2, 10)][0], ranks[0]['local'][0])
