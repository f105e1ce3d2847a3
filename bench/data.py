"""Input pipeline vs model step: images/s of each alone, side by side.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/data.py [--workers 1] [--batches 20] [--arch narrow_resnet] [--device cpu]

Three rates, for one two-view batch at a time:
- the trainer's default pipeline: per-sample BYOL augmentation of both views in DataLoader workers;
- `device_augment=True` split: the loader's share (decode, crop, flip) and the device's share
  (per-sample colour jitter, grayscale, blur, solarize, normalise with kornia, batched);
  --synthetic_imagenet measures the same for ImageNet-like JPEGs and 224-pixel crops;
- the model step alone (forward, backward, optimizer, EMA) on ready tensors.
If a pipeline's rate is below the step's, the device waits for data.
"""
import argparse, time
import torch
from torch.utils.data import DataLoader
from triplet_ssl.data import dataset_info, open_dataset, subset_dataset
from triplet_ssl.augment import Augmented, ResumableSampler, device_views, ssl_views
from triplet_ssl.train import Config, build_model
from triplet_ssl.optim import build_optimizer

p = argparse.ArgumentParser()
p.add_argument('--dataset', default='fashion_mnist'); p.add_argument('--data_dir', default=None)
p.add_argument('--arch', default='narrow_resnet'); p.add_argument('--batch_size', type=int, default=256)
p.add_argument('--workers', type=int, default=1); p.add_argument('--batches', type=int, default=20)
p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
p.add_argument('--synthetic_imagenet', action='store_true', help='write random 500x375 JPEGs to a temporary image_folder and use it (224 crops)')
a = p.parse_args()
if a.synthetic_imagenet:   # ImageNet-like decoding and 224-pixel augmentation, without ImageNet
    import tempfile, numpy as np
    from pathlib import Path
    from PIL import Image
    a.dataset, a.data_dir = 'image_folder', tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    for i in range(a.batch_size * (a.batches + 2)):
        folder = Path(a.data_dir, 'train', f'c{i % 10}'); folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(folder / f'{i}.jpg', quality=90)
dev = torch.device(a.device)
info = dataset_info(a.dataset)
ch = info['channels']
ds = subset_dataset(open_dataset(a.dataset, a.data_dir, 'pretrain'), a.batch_size * (a.batches + 2), 0)

def loader_rate(transform):
    views = Augmented(ds, transform, seed=0)
    loader = DataLoader(views, batch_size=a.batch_size, sampler=ResumableSampler(views, a.batch_size), num_workers=a.workers, drop_last=True)
    it = iter(loader); batch = next(it)   # workers started
    t = time.time(); n = 0
    for (v1, v2), _ in it: n += len(v1)
    return n / (time.time() - t), batch

def sync():
    if dev.type == 'cuda': torch.cuda.synchronize()

full, _ = loader_rate(ssl_views(info))
split, ((c1, c2), _) = loader_rate(ssl_views(info, device_augment=True))
augs = [a.to(dev) for a in device_views(info)]
c1, c2 = c1.to(dev), c2.to(dev)
augs[0](c1); augs[1](c2); sync()
t = time.time()
for _ in range(10): x1, x2 = augs[0](c1), augs[1](c2)
sync(); on_device = 10 * a.batch_size / (time.time() - t)

cfg = Config(dataset=a.dataset, arch=a.arch, batch_size=a.batch_size)
model = build_model(cfg, ch).to(dev); opt = build_optimizer('sgd', model, 0.1, 0.9, 1e-5)
def step():
    loss = model(x1, x2); opt.zero_grad(); loss.backward(); opt.step(); model.update_target(0.99)
step(); sync()
t = time.time()
for _ in range(5): step()
sync(); model_rate = 5 * a.batch_size / (time.time() - t)
print(f"{a.dataset}, {a.arch}, batch {a.batch_size}, {a.workers} loader worker(s), device {dev}, {torch.get_num_threads()} torch threads")
print("| CPU pipeline (per-sample, both views) | split: loader share | split: device share | model step | CPU pipeline / step | split loader / step |")
print("|---|---|---|---|---|---|")
print(f"| {full:.0f} img/s | {split:.0f} img/s | {on_device:.0f} img/s | {model_rate:.0f} img/s | {full / model_rate:.2f} | {split / model_rate:.2f} |")
