"""Input pipeline vs model step: images/s of each alone, side by side.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/data.py [--workers 1] [--batches 20] [--arch narrow_resnet]

The pipeline is the trainer's: seeded per-sample two-view augmentation (BYOL's, `ssl_augmentation`) in
DataLoader workers. The model step is forward + backward + optimizer + EMA on ready tensors. If the
pipeline's rate is below the step's, the accelerator (or CPU) waits for data.
"""
import argparse, time
import torch
from torch.utils.data import DataLoader
from triplet_ssl.data import Augmented, ResumableSampler, TwoViews, dataset_info, open_dataset, ssl_augmentation, subset_dataset
from triplet_ssl.train import Config, build_model
from triplet_ssl.optim import build_optimizer

p = argparse.ArgumentParser()
p.add_argument('--dataset', default='fashion_mnist'); p.add_argument('--data_dir', default=None)
p.add_argument('--arch', default='narrow_resnet'); p.add_argument('--batch_size', type=int, default=256)
p.add_argument('--workers', type=int, default=1); p.add_argument('--batches', type=int, default=20)
a = p.parse_args()

info = dataset_info(a.dataset)
size, ch, mean, std = info['size'], info['channels'], info['mean'], info['std']
ds = subset_dataset(open_dataset(a.dataset, a.data_dir, 'pretrain'), a.batch_size * (a.batches + 2), 0)
views = Augmented(ds, TwoViews(ssl_augmentation(1, size, ch, mean, std), ssl_augmentation(2, size, ch, mean, std)), seed=0)
loader = DataLoader(views, batch_size=a.batch_size, sampler=ResumableSampler(views, a.batch_size), num_workers=a.workers,
                    drop_last=True)
it = iter(loader); next(it)                      # start the workers
t = time.time(); n = 0
for (v1, v2), _ in it: n += len(v1)
pipe = n / (time.time() - t)

cfg = Config(dataset=a.dataset, arch=a.arch, batch_size=a.batch_size)
model = build_model(cfg, ch); opt = build_optimizer('sgd', model, 0.1, 0.9, 1e-5)
x1, x2 = v1, v2
def step():
    loss = model(x1, x2); opt.zero_grad(); loss.backward(); opt.step(); model.update_target(0.99)
step()
t = time.time()
for _ in range(5): step()
model_rate = 5 * a.batch_size / (time.time() - t)
print(f"{a.dataset}, {a.arch}, batch {a.batch_size}, {a.workers} worker(s), {torch.get_num_threads()} torch threads")
print(f"| input pipeline alone | model step alone | pipeline / step |")
print(f"| {pipe:.0f} img/s | {model_rate:.0f} img/s | {pipe / model_rate:.2f} |")
