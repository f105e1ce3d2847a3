"""Time `truncated_triplet_loss` (forward + backward) against a per-row Python loop of the same
definition, and measure the loss's share of one resnet18 training step.

    .venv/bin/python bench/loss.py               # CPU, the threads torch picks
    .venv/bin/python bench/loss.py --threads 1   # steadier when the machine is shared
    .venv/bin/python bench/loss.py --quick       # fewer repetitions

The loops are checked to give the vectorised loss's value before anything is timed.
"""
import argparse, copy, datetime, platform, time
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from triplet_ssl.losses import deputy_band, truncated_triplet_loss
from triplet_ssl.train import Config


def loss_row_loop(pred, target, deputy, gamma=2.0, margin=100.0, rows=None, shared_matrix=True):
    """The definition row by row: the row's distances, its negatives sorted, the deputy, the hinge.
    `shared_matrix` computes all distances with one matrix product first; `rows` stops after the first rows (sum / n)."""
    n = pred.shape[0]
    p, t = F.normalize(pred, dim=1), F.normalize(target, dim=1)
    if shared_matrix: d = -2 * p @ t.T
    lo, hi = deputy_band(deputy, n - 1)
    total = 0
    for i in range(n if rows is None else rows):
        d_i = d[i] if shared_matrix else -2 * t @ p[i]
        negatives = torch.cat([d_i[:i], d_i[i + 1:]]).sort().values
        total = total + F.relu(gamma * d_i[i] - negatives[lo - 1:hi].mean() + margin)
    return total / n


def timed(fn, reps, warmup=3):
    "Best (least disturbed) seconds of `fn()` over `reps` runs: the machine may be shared."
    for _ in range(warmup): fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)


def fwd_bwd(loss_fn, n, d=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, d, generator=g).requires_grad_()
    target = torch.randn(n, d, generator=g)
    def step():
        pred.grad = None
        loss_fn(pred, target).backward()
    return step


def check_loops_agree():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
    for deputy in [(2, 10), 'median']:
        want = truncated_triplet_loss(pred, target, deputy=deputy)
        for shared in (True, False):
            torch.testing.assert_close(loss_row_loop(pred, target, deputy, shared_matrix=shared), want)


def bench_loss(quick):
    check_loops_agree()
    print('## Vectorised loss vs per-row loops (forward + backward, d=256, float32)\n')
    print('| n | deputy | vectorised ms | loop, shared matrix ms | ratio | loop, row by row ms | ratio |')
    print('|---|---|---|---|---|---|---|')
    subset = None
    for n in [128, 512, 2048]:
        for deputy in [(2, 10), 'median']:
            fast = timed(fwd_bwd(lambda p, t: truncated_triplet_loss(p, t, deputy=deputy), n), reps=5 if quick else 20)
            rows = n if n <= 512 else 256   # a loop's cost per row is fixed at a given n: time a subset at n=2048
            if rows < n: subset = (n, rows)
            loops = [timed(fwd_bwd(lambda p, t: loss_row_loop(p, t, deputy, rows=rows, shared_matrix=shared), n),
                           reps=2 if n > 512 or quick else 3, warmup=1) * n / rows for shared in (True, False)]
            mark = '*' if rows < n else ''
            print(f"| {n} | {deputy} | {fast * 1e3:.2f} | " + ' | '.join(f"{l * 1e3:.1f}{mark} | {l / fast:.0f}x" for l in loops) + ' |')
    print('\n"shared matrix": one n x n matrix product, then ranking, deputy and hinge row by row; '
          '"row by row": each row\'s distances are computed in the loop too.')
    if subset: print(f"* n={subset[0]}: the loops are timed (best of 2) on their first {subset[1]} of {subset[0]} rows "
                     f"and scaled by {subset[0] // subset[1]}x.")


def mlp(dims):
    "Linear-BN-ReLU between every pair of widths, a plain Linear at the end."
    layers = []
    for a, b in zip(dims[:-2], dims[1:-1]): layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(dims[-2], dims[-1]))


def bench_step(quick, batch=256, size=32):
    print(f'\n## Share of one training step: resnet18 (fc removed) + projector 512-4096-256 + predictor 256-4096-256, '
          f'batch {batch}, {size}x{size} images, two views\n')
    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    online = nn.Sequential(backbone, mlp([512, 4096, 256]))
    predictor = mlp([256, 4096, 256])
    target_net = copy.deepcopy(online).requires_grad_(False)
    deputy = Config().deputy   # the trainer's default
    opt = torch.optim.SGD(list(online.parameters()) + list(predictor.parameters()), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(batch, 3, size, size, generator=g), torch.randn(batch, 3, size, size, generator=g)
    kept = {}

    def step():
        p1, p2 = predictor(online(v1)), predictor(online(v2))
        with torch.no_grad(): t1, t2 = target_net(v1), target_net(v2)
        loss = truncated_triplet_loss(p1, t2, deputy=deputy) + truncated_triplet_loss(p2, t1, deputy=deputy)
        opt.zero_grad(); loss.backward(); opt.step()
        kept.update(p1=p1.detach(), p2=p2.detach(), t1=t1, t2=t2)

    step_s = timed(step, reps=2 if quick else 5, warmup=1)
    p1, p2 = kept['p1'].clone().requires_grad_(), kept['p2'].clone().requires_grad_()
    def loss_only():
        p1.grad = p2.grad = None
        (truncated_triplet_loss(p1, kept['t2'], deputy=deputy) + truncated_triplet_loss(p2, kept['t1'], deputy=deputy)).backward()
    loss_s = timed(loss_only, reps=20 if quick else 100)
    print(f"| full step ms | loss (both directions, fwd + bwd) ms | loss share |")
    print(f"|---|---|---|")
    print(f"| {step_s * 1e3:.0f} | {loss_s * 1e3:.2f} | {100 * loss_s / step_s:.2f}% |")
    print(f'\nTimes are the best of several runs. The loss is timed on its own, on the step\'s own predictions and targets (deputy {deputy}); the step '
          'includes it, the target network\'s forward and an SGD update.')


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='fewer repetitions')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice)')
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(f"# bench/loss.py, {datetime.date.today()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, CPU\n")
    bench_loss(args.quick)
    bench_step(args.quick)
