"""`online_linear=true` on datasets decoded per sample (image_folder, sysu30k) with `train_size` below the dataset's size.

`train_size` makes the pretraining set a `torch.utils.data.Subset`, which has no class list of its own: the probe's class
count must come through it (`data.count_classes`). Each run is tiny (16-pixel images, narrow ResNet, 2 steps)."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from helpers import REPO
CLASSES = 3


def write_images(folder: Path, n: int, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n): Image.fromarray(rng.integers(0, 256, (20, 16, 3), dtype=np.uint8)).save(folder / f'{i}.jpg')


def write_dataset(dataset: str, root: Path) -> int:
    "A tiny on-disk dataset in the released layout; returns its number of training images."
    rng = np.random.default_rng(0)
    if dataset == 'image_folder':
        for c in range(CLASSES):
            write_images(root / 'train' / f'class{c}', 14, rng); write_images(root / 'val' / f'class{c}', 4, rng)
    else:   # SYSU-30k: numbered bag folders; every split reads the same images
        for bag in range(1, CLASSES + 1): write_images(root / 'sysu_train_set_all' / f'{bag:010d}', 14, rng)
    return CLASSES * 14


@pytest.mark.parametrize('dataset', ['image_folder', 'sysu30k'])
def test_online_linear_on_a_subset(tmp_path, dataset):
    from triplet_ssl.runs import list_checkpoints, load_checkpoint, read_metrics
    data, out = tmp_path / 'data', tmp_path / 'run'
    n = write_dataset(dataset, data)
    train_size = 32
    assert train_size < n
    r = subprocess.run([sys.executable, '-m', 'triplet_ssl.train', f'dataset={dataset}', f'data_dir={data}', f'out_dir={out}',
                        'online_linear=true', f'train_size={train_size}', 'batch_size=16', 'image_size=16', 'arch=narrow_resnet',
                        'proj_hidden=16', 'proj_dim=8', 'pred_hidden=16', 'epochs=1', 'max_steps=2', 'knn_bank_size=12',
                        'knn_test_size=6', 'num_workers=0', 'device=cpu', 'precision=fp32'],
                       cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE', 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0, r.stderr[-3000:]
    row = read_metrics(out)[-1]
    assert 0 <= row['online_linear_top1'] <= 100 and 0 <= row['online_linear_train_top1'] <= 100
    probe = load_checkpoint(list_checkpoints(out)[-1])['online_linear']['fc']
    assert probe['weight'].shape[0] == CLASSES   # one output per class folder / bag, counted through the Subset
