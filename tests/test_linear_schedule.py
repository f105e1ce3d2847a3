"""The ImageNet linear presets follow the authors' linear configs, and their lr is mmcv's at every step of every epoch.

The authors' files (github.com/wanggrun/triplet configs/benchmarks/linear_classification/imagenet/
r50_last_cos_for_LessSslEpoch.py and r50_last_cos_for_MoreSslEpoch.py) set: SGD lr 0.15 / 0.04, momentum 0.9, weight decay 0,
32 images × 8 GPUs, 100 epochs, lr_config CosineAnnealing (min_lr 0) with warmup='linear', warmup_iters=10,
warmup_ratio=1e-4, warmup_by_epoch=True. mmcv's documented rule for that policy (LrUpdaterHook, by epoch):
before each epoch e the regular lr is min_lr + (lr - min_lr) * (1 + cos(pi * e / max_epochs)) / 2; with warmup_by_epoch the
warm-up lasts warmup_iters × (iterations per epoch) iterations; before each iteration i < that, the lr is
regular * (1 - k), k = (1 - i / warmup_iters) * (1 - warmup_ratio); from there on the regular lr.
"""
import math
import torch
from helpers import REPO

AUTHORS = {'short.yaml': 0.15, 'long.yaml': 0.04}


def _mmcv_reference(base_lr, epochs, iters_per_epoch, warmup_epochs, warmup_ratio, min_lr=0.0):
    "The lr mmcv sets before every iteration, following the hook's documented order of events."
    lrs, warmup_iters, it = [], warmup_epochs * iters_per_epoch, 0
    for epoch in range(epochs):
        regular = min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2   # before_train_epoch
        for _ in range(iters_per_epoch):                                                     # before_train_iter
            if it < warmup_iters: lrs.append(regular * (1 - (1 - it / warmup_iters) * (1 - warmup_ratio)))
            else: lrs.append(regular)
            it += 1
    return lrs


def test_presets_are_the_authors_linear_configs():
    from triplet_ssl.linear import load_eval_config
    for name, lr in AUTHORS.items():
        cfg = load_eval_config(REPO / 'configs' / 'linear' / name)
        assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.epochs) == (lr, 0.9, 0.0, 100), name
        assert (cfg.lr_schedule, cfg.warmup_epochs, cfg.warmup_ratio) == ('mmcv', 10, 1e-4), name
        assert 'wanggrun/triplet' in (REPO / 'configs' / 'linear' / name).read_text().split('\nprotocol:')[0]


def test_fit_lr_equals_mmcv_rule_at_every_step_and_epoch():
    "fit() with the presets' schedule: the lr of every optimizer step (100 epochs × 3 steps) == mmcv's; rows['lr'] per epoch too."
    from triplet_ssl.linear import fit, load_eval_config
    cfg = load_eval_config(REPO / 'configs' / 'linear' / 'short.yaml')
    torch.manual_seed(0)
    fc = torch.nn.Linear(4, 3)
    batches = [(torch.randn(5, 4), torch.randint(0, 3, (5,))) for _ in range(3)]
    seen = []
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]['lr']))
    try:
        rows = fit(fc, [dict(params=fc.parameters(), lr=cfg.lr)], batches, cfg.epochs, cfg.warmup_epochs, cfg.momentum, cfg.weight_decay,
                   'cpu', lr_schedule=cfg.lr_schedule, warmup_ratio=cfg.warmup_ratio)
    finally: hook.remove()
    ref = _mmcv_reference(0.15, 100, 3, 10, 1e-4)
    assert len(seen) == len(ref) == 300
    assert max(abs(a - b) for a, b in zip(seen, ref)) < 1e-15
    assert [r['lr'] for r in rows] == seen[::3]
    assert abs(seen[0] - 0.15e-4) < 1e-15 and seen[30] == 0.15 * (1 + math.cos(math.pi * 10 / 100)) / 2 and seen[31] == seen[30]


def test_per_step_variant_is_kept_and_differs():
    "lr_schedule='per_step' (the demos' default) is the old rule: warm-up from lr / steps, a cosine that moves every step."
    from triplet_ssl.optim import lr_at, mmcv_lr_at
    per_step = [lr_at(i, 300, 30, 0.15) for i in range(300)]
    mmcv = [mmcv_lr_at(i, 3, 100, 10, 0.15) for i in range(300)]
    assert abs(per_step[0] - 0.15 / 30) < 1e-15 and abs(mmcv[0] - 0.15e-4) < 1e-15
    assert per_step[100] != per_step[101] and mmcv[100] == mmcv[101]
