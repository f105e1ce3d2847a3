"""What several test files share, written once: the repository, a Python subprocess runner, and the tiny run sizes.
Test files import it as `from helpers import ...` (pytest puts tests/ on sys.path, both for `pytest tests` from the
repository root and for `cd tests && pytest`); spawned worker processes inherit that sys.path (see workers.py)."""
import os, shutil, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent   # the virtualenv's scripts: papermill, nbdev_test, jupyter
ENV = {**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE', 'PYTHONWARNINGS': 'ignore'}   # quiet, and no busy-waiting OpenMP threads
CHROMIUM = next((p for p in (os.environ.get('CHROMIUM'), shutil.which('chromium'), shutil.which('chromium-browser')) if p), None)


def run(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    "`python *args` in the repository root, output captured as text."
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw)


def run_quiet(*args, **kw) -> subprocess.CompletedProcess:
    "`run` with ENV: no Python warnings on stderr, passive OpenMP threads."
    return run(*args, env=ENV, **kw)


# A pretraining run small enough for seconds on a loaded 2-core CPU: 512 images (8 steps an epoch at batch 64), a kNN monitor
# of 200 bank and 100 query images, and narrow heads. Each test file adds what its runs need (`tiny(batch_size=64, ...)`).
# TripletSSL's loss settings where a test needs only a network's weights (runs take Config's defaults)
LOSS = dict(deputy='median', gamma=2.0, margin=100.0, negatives='local', mining_groups=1)

TINY = dict(train_size=512, knn_bank_size=200, knn_test_size=100, proj_hidden=64, proj_dim=32, pred_hidden=64)


def tiny(**params) -> dict:
    "TINY with `params` added or replaced: keyword arguments of `Config` / `load_config`."
    return {**TINY, **params}


def as_args(params: dict) -> list[str]:
    "The same parameters as command-line overrides `key=value`."
    return [f'{k}={v}' for k, v in params.items()]



def _run_rank(rank, compute, world, init_method, out_dir):
    import torch, torch.distributed as dist
    dist.init_process_group('gloo', init_method=init_method, rank=rank, world_size=world)
    try: torch.save(compute(rank), f'{out_dir}/rank{rank}.pt')
    finally: dist.destroy_process_group()


def spawn_ranks(compute, world: int, tmp) -> list:
    """`compute(rank)` in each of `world` gloo processes (a file rendezvous in `tmp`, the group set up and torn down
    around it): returns what each returned, in rank order."""
    import torch, torch.multiprocessing as mp
    mp.spawn(_run_rank, args=(compute, world, f'file://{tmp}/rendezvous', str(tmp)), nprocs=world, join=True)
    return [torch.load(Path(tmp) / f'rank{r}.pt') for r in range(world)]
