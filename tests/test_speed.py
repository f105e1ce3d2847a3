"""Fast by default on every route (issue 22), checked by behaviour, never by timing (bench/entry_points.py and
bench/trainer_overhead.py print the measured ratios): the OpenMP policy comes from the package, a notebook that imported
torch first gets its idle OpenMP threads quieted (`distributed.quiet_openmp`) and keeps every core, importing the trainer pulls in no compiler stack, and a script that
keeps a run's persistent loader workers alive until the interpreter exits still exits."""
import os, subprocess, sys

from helpers import REPO, TINY

ENV = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}   # a user never told about it
ENV.update(PYTHONWARNINGS='ignore', PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])]))


def python(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_the_package_sets_passive_waiting_before_torch_loads():
    r = python("import os, sys, triplet_ssl; print(os.environ['OMP_WAIT_POLICY'], triplet_ssl.OMP_PASSIVE, 'torch' in sys.modules)\n"
               "import triplet_ssl.train, torch; print(torch.get_num_threads() == len(os.sched_getaffinity(0)), 'torch._dynamo' in sys.modules)")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ['PASSIVE', 'True', 'False', 'True', 'False'], r.stdout   # and no torch._dynamo (torchvision's roi_align)


def test_torch_imported_first_then_a_run_kept_alive_until_exit(tmp_path):
    """A notebook's order (torch first: OpenMP already read its spinning default) gets an idle OpenMP team parked, which makes
    GNU OpenMP's waits passive, and keeps every core for the model step; a script holding the
    `Pretraining` object, its persistent worker alive, exits (multiprocessing's exit handler waited forever for it before)."""
    params = dict(TINY, batch_size=64, num_workers=1, device='cpu', out_dir=str(tmp_path / 'run'))
    code = ("import os, contextlib, torch\nbefore = torch.get_num_threads()\n"
            "from triplet_ssl.train import Config, Pretraining\n"
            f"run = Pretraining(Config(**{params!r}), False, contextlib.ExitStack())\n"
            "batches = iter(run.data.loader); next(batches); next(batches)\n"
            "import threading; parked = any(t.name == 'triplet_ssl-openmp-park' for t in threading.enumerate())\n"
            "print(before, torch.get_num_threads(), len(os.sched_getaffinity(0)), run.data.loader._iterator._workers[0].is_alive(), parked)")
    r = python(code, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    before, threads, cores, alive, parked = r.stdout.split()
    assert alive == 'True' and parked == 'True' and int(threads) == min(int(cores), int(before)), r.stdout
