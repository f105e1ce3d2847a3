"""Bad configuration and input, through the command line and through papermill: one line `error: ...` naming the key,
the value and the fix, exit status 1, no traceback; values of the right meaning but the wrong YAML type are accepted."""
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
import pytest
import torch
from triplet_ssl.data import write_idx
from triplet_ssl.train import load_config
from helpers import REPO
TRAIN = [sys.executable, '-m', 'triplet_ssl.train']


def bad_inputs(tmp: Path) -> dict:
    "case name: (command-line arguments, what the error line must say)."
    (tmp / 'broken.yaml').write_text('epochs: 5\nlr 0.1\nbatch_size: [64\n')
    (tmp / 'a_file').write_text('')
    fm = tmp / 'fashion'; fm.mkdir()
    for split, n in (('train', 64), ('t10k', 32)):
        write_idx(fm / f'{split}-images-idx3-ubyte.gz', np.zeros((n, 28, 28), np.uint8))
        write_idx(fm / f'{split}-labels-idx1-ubyte.gz', np.zeros(n, np.uint8))
    raw = (fm / 'train-images-idx3-ubyte.gz').read_bytes(); (fm / 'train-images-idx3-ubyte.gz').write_bytes(raw[:len(raw) // 2])
    torch.save({'model': {}, 'evil': torch.nn.Linear(1, 1)}, tmp / 'pickled.pt')
    (tmp / 'empty.pt').write_bytes(b'')
    labels = tmp / 'labels'; labels.mkdir()   # a Fashion-MNIST labels file with a label no class has
    for split, n in (('train', 64), ('t10k', 32)):
        write_idx(labels / f'{split}-images-idx3-ubyte.gz', np.zeros((n, 28, 28), np.uint8))
        write_idx(labels / f'{split}-labels-idx1-ubyte.gz', np.r_[np.zeros(n - 1, np.uint8), 12].astype(np.uint8))
    cifar = tmp / 'cifar' / 'cifar-10-batches-py'; cifar.mkdir(parents=True)   # a CIFAR batch whose pickle calls a function
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']: (cifar / name).write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    runs = tmp / 'runs'; runs.mkdir(); (runs / 'checkpoint-00000004.pt').write_bytes(b'')
    out = f'out_dir={tmp / "run"}'   # runs that get as far as the run folder each have their own (two at once would meet its lock)
    return {
        'lr not a number': (['lr=abc', out], ["lr='abc' is not a number", 'lr=0.1']),
        'negative lr': (['lr=-1', out], ['lr must be a finite number >= 0, got -1.0']),
        'max_steps 0': (['max_steps=0', out], ['max_steps must be a positive integer or null, got 0']),
        'checkpoint_every -1': (['checkpoint_every=-1', out], ['checkpoint_every must be a positive integer or null']),
        'empty kNN bank': (['knn_bank_size=0', out], ['knn_bank_size must be a positive integer or null']),
        'unknown device': (['device=tpu', out], ["Unknown device 'tpu'", "'cpu', 'cuda'"]),
        'deputy band wider than the batch': (['deputy=(2,1000)', out], ['needs at least 1000 negatives', 'larger batch_size']),
        'misspelt key': (['depity=median', out], ["Unknown parameter(s) ['depity']", 'did you mean deputy?']),
        'YAML syntax error': ([str(tmp / 'broken.yaml'), out], ['broken.yaml, line', 'not valid YAML', "'batch_size: [64'"]),
        'out_dir is a file': ([f'out_dir={tmp / "a_file"}'], ['is a file, not a folder', 'choose a folder path']),
        'truncated download': ([f'data_dir={fm}', out + '_data'], ['train-images-idx3-ubyte.gz is truncated or not a valid gzip file']),
        'pickled objects': ([f'resume={tmp / "pickled.pt"}', 'train_size=512', 'knn_bank_size=100', 'knn_test_size=100', out + '_pickled'],
                            ['pickled.pt holds Python objects other than tensors; refusing to unpickle it']),
        'image_size 1': (['image_size=1', out], ['image_size must be at least 2', 'null takes the dataset']),
        'negative seed': (['seed=-1', out], ['seed must be an integer in [0, 2**32), got -1']),
        'gamma overflows the loss': (['gamma=1e38', out], ['gamma must be a finite number within ±1e6, got 1e+38']),
        'label out of range': ([f'data_dir={labels}', out + '_labels'], ['train-labels-idx1-ubyte.gz: label 12 of image 63', 'is outside']),
        'CIFAR pickle payload': (['dataset=cifar10', f'data_dir={tmp / "cifar"}', out + '_cifar'],
                                 ['data_batch_1 is not a CIFAR batch (refusing to load os.system']),
        'a folder for a checkpoint': ([f'resume={runs}', out + '_folder'], ['is a folder, not a file', 'it holds: checkpoint-00000004.pt']),
        'empty init checkpoint': ([f'init_checkpoint={tmp / "empty.pt"}', 'train_size=512', 'knn_bank_size=100', 'knn_test_size=100', out + '_empty'],
                                  ['empty.pt is empty (0 bytes)']),
    }


def test_each_bad_input_gives_one_error_line(tmp_path):
    cases = bad_inputs(tmp_path)
    def run(args): return subprocess.run([*TRAIN, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    with ThreadPoolExecutor(2) as pool: results = dict(zip(cases, pool.map(run, [a for a, _ in cases.values()])))
    wrong = {}
    for name, (args, wanted) in cases.items():
        r = results[name]
        last = (r.stderr.strip().splitlines() or [''])[-1]
        if r.returncode != 1 or 'Traceback' in r.stderr or not last.startswith('error: ') or not all(w in last for w in wanted):
            wrong[name] = (r.returncode, r.stderr[-1500:])
    assert not wrong, wrong


def test_values_are_coerced_to_their_declared_types(tmp_path):
    "YAML reads 1e-3 (no dot) as a string; the shell gives (50,60) as text: both mean something clear."
    (tmp_path / 'x.yaml').write_text('lr: 1e-3\nweight_decay: 1e-6\nmax_steps: 1e3\ndeputy: (50, 60)\n')
    cfg = load_config(tmp_path / 'x.yaml', ['lr=1.0e6', 'sync_bn=yes'])
    assert (cfg.lr, cfg.weight_decay, cfg.max_steps, cfg.deputy, cfg.sync_bn) == (1e6, 1e-6, 1000, (50, 60), True)
    assert type(cfg.lr) is float and type(cfg.max_steps) is int
    # and a run from such a file trains (it failed later with a TypeError before)
    (tmp_path / 'small.yaml').write_text('lr: 1e-3\ntrain_size: 512\nbatch_size: 64\nmax_steps: 2\nknn_bank_size: 100\n'
                                         'knn_test_size: 100\nproj_hidden: 32\npred_hidden: 32\nproj_dim: 16\nnum_workers: 0\n')
    r = subprocess.run([*TRAIN, str(tmp_path / 'small.yaml'), f'out_dir={tmp_path / "run"}'], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize('param, value, wanted', [('lr', 'abc', "lr='abc' is not a number"),
                                                   ('max_steps', '0', 'max_steps must be a positive integer or null')])
def test_bad_parameters_through_papermill(tmp_path, param, value, wanted):
    r = subprocess.run([str(Path(sys.executable).parent / 'papermill'), 'nbs/experiments/pretrain.ipynb', str(tmp_path / 'out.ipynb'),
                        '-p', param, value, '-p', 'out_dir', str(tmp_path / 'run'), '--no-progress-bar'],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and wanted in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / 'run').exists()   # refused before anything was written
