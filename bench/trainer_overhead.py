"""The trainer against a bare loop of the same model on the same loader, and where the trainer's step time goes.

    .venv/bin/python bench/trainer_overhead.py [--steps 12] [--repeats 3] [key=value ...]   # Config overrides

Both run in one process on one `Pretraining` (Config's defaults: Fashion-MNIST, narrow ResNet, batch 256, 1 loader worker),
alternately, in blocks of `--steps` optimizer steps (the first two of each block are not timed: the loader refills):
- trainer: `Pretraining.train_one_epoch`, the loop every run uses (schedules, loss and diagnostics reduced, logging every
  `log_every` steps, the finiteness check, the progress bar), with the end of the epoch (kNN, checkpoint) left out;
- bare: `loss = model(v1, v2); opt.zero_grad(); loss.backward(); opt.step(); model.update_target(m)` on the same iterator.
Prints images/s of each block, the median ratio trainer / bare with its range, and the trainer's step split into:
waiting for the loader, forward + backward, optimizer step, EMA update of the target, and the rest (bookkeeping).
"""
import argparse, os, statistics, sys, tempfile, time, contextlib
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a clone without installing
from triplet_ssl.config import load_config

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--steps', type=int, default=12, help='optimizer steps per block (2 more than are timed)')
p.add_argument('--repeats', type=int, default=3, help='trainer and bare blocks each')
p.add_argument('overrides', nargs='*', help='Config key=value (default: the CPU demo with a small kNN set)')
a = p.parse_args()

import torch
from triplet_ssl.train import Pretraining
from triplet_ssl.runs import MetricsLog, StopRequest

cfg = load_config(overrides=['train_size=null', 'knn_bank_size=200', 'knn_test_size=100', f'log_every=10', *a.overrides,
                             f'out_dir={tempfile.mkdtemp(prefix="trainer_overhead_")}'])
split = dict(loader=0.0, forward_backward=0.0, optimizer=0.0, ema=0.0)

def timed(name, fn):
    def wrapped(*args, **kw):
        t = time.perf_counter(); out = fn(*args, **kw); split[name] += time.perf_counter() - t; return out
    return wrapped

class TimedLoader:
    "The run's loader, its batches' waiting time counted."
    def __init__(self, loader): self.loader = loader
    def __iter__(self):
        it = iter(self.loader)
        while True:
            t = time.perf_counter()
            try: batch = next(it)
            except StopIteration: return
            split['loader'] += time.perf_counter() - t
            yield batch

with contextlib.ExitStack() as cleanup:
    run = Pretraining(cfg, False, cleanup)
    run.log = cleanup.enter_context(MetricsLog(run.out))   # as `fit` opens it: steps.jsonl and TensorBoard
    d, model = run.data, run.model
    model.train()
    stamps = []
    step_fn = run.train_step
    run.train_step = lambda *x: (lambda out: (stamps.append(time.perf_counter()), out)[1])(step_fn(*x))
    run.end_epoch = lambda *x: None
    run._forward_backward = timed('forward_backward', run._forward_backward)
    run.scaler.step = timed('optimizer', run.scaler.step)
    model.update_target = timed('ema', model.update_target)
    d.loader = TimedLoader(d.loader)
    stop = StopRequest()

    def trainer_block():
        stamps.clear()
        for k in split: split[k] = 0.0
        d.total_steps = run.step + a.steps
        t0 = time.perf_counter()
        run.train_one_epoch(stop)
        n = len(stamps) - 3   # steps after the third: steady
        return n * cfg.batch_size / (stamps[-1] - stamps[2]), {**split, 'wall': stamps[-1] - t0}

    def bare_block():
        epoch, first = divmod(run.step, d.steps_per_epoch)
        d.sampler.set_epoch(epoch, first)
        it, times = iter(d.loader.loader), []
        for _ in range(a.steps):
            (v1, v2), _ = next(it)
            loss = model(v1, v2); run.opt.zero_grad(); loss.backward(); run.opt.step(); model.update_target(0.99)
            run.step += 1; times.append(time.perf_counter())
        return (len(times) - 3) * cfg.batch_size / (times[-1] - times[2])

    trainer_block(); bare_block()   # warm-up: workers started, allocator warm
    rows = []
    for r in range(a.repeats):
        t, parts = trainer_block(); b = bare_block()
        rows.append((t, b, parts))
        print(f"repeat {r + 1}: trainer {t:.0f} img/s, bare {b:.0f} img/s, ratio {t / b:.3f}", flush=True)
    ratios = [t / b for t, b, _ in rows]
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f"\n{cfg.dataset}, {cfg.arch}, batch {cfg.batch_size}, {cfg.num_workers} loader worker(s), {torch.get_num_threads()} torch "
          f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"trainer / bare: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs)")
    steps = a.steps * len(rows)
    per_step = {k: sum(parts[k] for _, _, parts in rows) / steps * 1000 for k in [*split, 'wall']}
    per_step['rest (bookkeeping)'] = per_step['wall'] - sum(per_step[k] for k in split)
    print(f"trainer step: {per_step.pop('wall'):.0f} ms (all its steps, the refills after each block's start included), of which")
    for k, v in per_step.items(): print(f"  {k:18} {v:8.1f} ms/step")
    os._exit(0)   # the run folder is a temporary one; nothing to close
