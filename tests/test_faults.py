"""Faults that runs meet on clusters, each on a tiny real run through the command line: the exit status, the message,
which checkpoints remain, and that `resume=auto` then continues bit-exactly wherever the fault allows.

The reference is one uninterrupted run with the same parameters; every resumed run must end with the same weights."""
import json, os, shutil, signal, socket, subprocess, sys, time
import pytest
import torch
from triplet_ssl.runs import checkpoint_path, list_checkpoints, load_checkpoint, read_checkpoint, read_metrics, save_checkpoint

from helpers import BIN, REPO, as_args, tiny
# 512 images / 64 = 8 steps an epoch; 12 steps cross an epoch boundary; a checkpoint every 2 steps.
TINY_12_STEPS_CLI = ['configs/cpu_demo.yaml', *as_args(tiny(batch_size=64, knn_every=0, log_every=1, max_steps=12, checkpoint_every=2, keep_last=10))]
TRAIN = [sys.executable, '-m', 'triplet_ssl.train']
QUIET_THREADS = {**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE'}   # idle OpenMP threads sleep: a loaded machine stays usable (warnings kept)


def cli(out, *args, timeout=600):
    return subprocess.run([*TRAIN, *TINY_12_STEPS_CLI, f'out_dir={out}', *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=QUIET_THREADS)


def start(out, *args, cmd=TRAIN):
    "A run in its own process group (as a batch system starts it), to be signalled as a group."
    return subprocess.Popen([*cmd, *TINY_12_STEPS_CLI, f'out_dir={out}', *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=QUIET_THREADS)


def wait_for_steps(out, n, proc, limit=300):
    deadline = time.time() + limit
    while len(read_metrics(out, 'steps')) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'the run did not get going'
        time.sleep(0.05)


def final(out): return load_checkpoint(checkpoint_path(out, 12))['model']


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k, v in a.items(): assert torch.equal(v, b[k]), k


def copy_run(src, dst, upto):
    "A run folder as it was at step `upto` (its checkpoints, manifest and logs up to then)."
    dst.mkdir(parents=True)
    for name in ('checkpoints.json', 'config.yaml', 'run.json'): shutil.copy(src / name, dst / name)
    for p in list_checkpoints(src):
        if int(p.stem.split('-')[1]) <= upto: shutil.copy(p, dst / p.name)
    for name in ('metrics', 'steps'):
        rows = [r for r in read_metrics(src, name) if r['step'] <= upto]
        (dst / f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return dst


TIMING = ('images_per_s', 'epoch_seconds')


def record(out, name='metrics'):
    "A run's rows without their timings: what must equal the uninterrupted run's exactly."
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(out, name)]


def assert_same_record(out, ref):
    "The whole record: final weights and optimizer, every steps.jsonl and metrics.jsonl row (timings aside)."
    a, b = load_checkpoint(checkpoint_path(out, 12)), load_checkpoint(checkpoint_path(ref, 12))
    assert_same(a['model'], b['model']); assert_same(a['optimizer']['state'][0], b['optimizer']['state'][0])
    assert record(out, 'steps') == record(ref, 'steps')
    assert record(out) == record(ref)


def flip_bit(path):
    raw = bytearray(path.read_bytes()); raw[len(raw) // 2] ^= 0x10; path.write_bytes(bytes(raw))


def files(out):
    "Every file of a run folder with its bytes (the lock aside)."
    return {p.name: p.read_bytes() for p in sorted(out.rglob('*')) if p.is_file() and p.name != '.lock'}


def one_error_line(r):
    "A refused run: exit status 1 and one line `error: ...` at the end, no traceback."
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), r.stderr[-3000:]
    return last


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp('faults') / 'reference'
    r = cli(out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in list_checkpoints(out)] == [checkpoint_path(out, s).name for s in range(2, 13, 2)]
    return out


def test_empty_or_incomplete_newest_checkpoint_falls_back(reference, tmp_path):
    out = copy_run(reference, tmp_path / 'run', upto=6)
    checkpoint_path(out, 8).write_bytes(b'')                                   # a crash or a full disk mid-write
    save_checkpoint(checkpoint_path(out, 10), run_id='x', model=load_checkpoint(checkpoint_path(out, 6))['model'], step=10)  # no optimizer
    r = cli(out, 'resume=auto')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'is empty (0 bytes)' in r.stderr and 'has no optimizer' in r.stderr and 'resuming at step 6' in r.stdout
    assert_same_record(out, reference)   # the resumed epoch's row averages all its steps, as the uninterrupted one
    # the other readers of checkpoints say the same, in one line
    empty = tmp_path / 'empty.pt'; empty.write_bytes(b'')
    r = subprocess.run([sys.executable, '-m', 'triplet_ssl.interop', 'inspect', str(empty)], cwd=REPO, capture_output=True, text=True)
    assert 'is empty (0 bytes)' in one_error_line(r)


def test_sigterm_to_the_process_group_checkpoints_and_resumes_exactly(reference, tmp_path):
    "What SLURM does on pre-emption or scancel: SIGTERM to every process of the job, data-loader workers included."
    out = tmp_path / 'run'
    p = start(out, 'num_workers=2')
    wait_for_steps(out, 3, p)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0 and 'Stopped by SIGTERM' in err and 'DataLoader worker' not in err, err[-3000:]
    stopped = load_checkpoint(list_checkpoints(out)[-1])['step']
    assert 3 <= stopped < 12
    r = cli(out, 'num_workers=2', 'resume=auto')
    assert r.returncode == 0 and f'resuming at step {stopped}' in r.stdout, r.stderr[-3000:]
    assert_same_record(out, reference)   # the worker count does not change the data: the same record


def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_sigterm_to_a_torchrun_job(tmp_path):
    "Two torchrun processes with a loader worker each, signalled as a group: every rank stops at the same step, one checkpoint."
    out = tmp_path / 'run'
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2', '--master_addr=127.0.0.1',
                f'--master_port={_free_port()}', '-m', 'triplet_ssl.train']
    p = start(out, 'batch_size=32', 'num_workers=1', cmd=torchrun)
    wait_for_steps(out, 3, p)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0 and 'Stopped by SIGTERM' in err, err[-3000:]
    stopped = load_checkpoint(list_checkpoints(out)[-1])['step']
    assert 3 <= stopped < 12 and not list(out.glob('*.tmp'))
    r = subprocess.run([*torchrun[:6], f'--master_port={_free_port()}', *torchrun[7:], *TINY_12_STEPS_CLI, f'out_dir={out}', 'batch_size=32',
                        'num_workers=1', 'resume=auto'], cwd=REPO, capture_output=True, text=True, timeout=600,
                       env=QUIET_THREADS)
    assert r.returncode == 0 and f'resuming at step {stopped}' in r.stdout, r.stderr[-3000:]
    assert [row['step'] for row in read_metrics(out, 'steps')] == list(range(1, 13))


def test_a_fresh_run_never_lands_on_another(reference, tmp_path):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in reference.iterdir() if p.name != '.lock')
    assert 'already holds a run (6 checkpoint(s)' in one_error_line(cli(reference))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in reference.iterdir() if p.name != '.lock') == before   # nothing touched but the lock
    out = copy_run(reference, tmp_path / 'over', upto=12)
    r = cli(out, 'max_steps=2', 'overwrite=true')   # asked for explicitly: the old run goes
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in list_checkpoints(out)] == ['checkpoint-00000002.pt']


def test_pruning_keeps_the_newest_good_checkpoint_and_others_files(reference, tmp_path):
    out = copy_run(reference, tmp_path / 'run', upto=4)
    checkpoint_path(out, 99).write_bytes(b'not a checkpoint')   # an unreadable higher-numbered file, not this run's
    r = cli(out, 'resume=auto', 'keep_last=1')
    assert r.returncode == 0 and 'resuming at step 4' in r.stdout, r.stderr[-3000:]
    assert [p.name for p in list_checkpoints(out)] == ['checkpoint-00000012.pt', 'checkpoint-00000099.pt']
    assert_same(final(out), final(reference))


def test_two_runs_in_one_folder(tmp_path):
    out = tmp_path / 'run'
    first = start(out, 'max_steps=100000', 'train_size=4096', 'checkpoint_every=100000')   # runs until stopped
    try:
        wait_for_steps(out, 1, first)
        last = one_error_line(cli(out, 'resume=auto'))
        assert f'is in use by another run (host {socket.gethostname()}, PID {first.pid}' in last, last
        for args in ((), ('overwrite=true',)):   # a fresh run, even with overwrite=true: the lock is taken before anything is deleted
            kept = {n: (out / n).stat().st_size for n in ('metrics.jsonl', 'run.json', 'config.yaml')}
            last = one_error_line(cli(out, *args))
            assert f'is in use by another run (host {socket.gethostname()}, PID {first.pid}' in last and 'overwrite' not in last, last
            assert all((out / n).stat().st_size >= size > 0 for n, size in kept.items()) and (out / 'tb').is_dir()
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        _, err = first.communicate(timeout=300)
    assert 'Stopped by SIGTERM' in err, err[-3000:]
    steps = [row['step'] for row in read_metrics(out, 'steps')]
    assert steps == list(range(1, len(steps) + 1))   # one writer: no interleaved rows


def test_non_finite_weights_are_never_saved(tmp_path):
    out = tmp_path / 'run'
    last = one_error_line(cli(out, 'lr=1000000.0', 'max_steps=8'))   # the loss stays finite; a BN statistic overflows
    assert 'became non-finite' in last and 'holds the last finite state' in last, last
    for p in list_checkpoints(out):
        ckpt = load_checkpoint(p)
        assert all(v.isfinite().all() for v in ckpt['model'].values() if v.is_floating_point()), p
    assert 'lr must be a finite number >= 0, got nan' in one_error_line(cli(tmp_path / 'nan', 'lr=.nan'))


def test_flipped_bytes_are_caught_and_skipped(reference, tmp_path):
    out = copy_run(reference, tmp_path / 'run', upto=6)
    p = checkpoint_path(out, 6); raw = bytearray(p.read_bytes())
    middle = len(raw) // 2; raw[middle:middle + 64] = bytes(b ^ 0xFF for b in raw[middle:middle + 64]); p.write_bytes(bytes(raw))
    r = cli(out, 'resume=auto')
    assert r.returncode == 0 and 'does not match the sha256 recorded' in r.stderr and 'resuming at step 4' in r.stdout, r.stderr[-3000:]
    assert_same(final(out), final(reference))


def _mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)], capture_output=True, text=True)
    if r.returncode != 0: pytest.skip(f'a disk-full test needs a small tmpfs; mount refused ({r.stderr.strip()}): run as root')


def test_disk_full(reference, tmp_path):
    size = checkpoint_path(reference, 2).stat().st_size
    disk = tmp_path / 'disk'
    _mount_tmpfs(disk, size * 3 // 2 + 256 * 1024)   # room for one checkpoint and the logs, not two checkpoints
    try:
        out = disk / 'run'
        last = one_error_line(cli(out))
        assert f'No space left on device {disk}' in last and 'needs about' in last and 'checkpoint-00000004.pt' in last, last
        assert not list(out.glob('*.tmp'))                                   # the partial file does not keep the disk full
        assert [p.name for p in list_checkpoints(out)] == ['checkpoint-00000002.pt']
        read_checkpoint(checkpoint_path(out, 2))                            # intact and verified
        moved = shutil.copytree(out, tmp_path / 'moved', ignore=shutil.ignore_patterns('.lock'))
    finally:
        subprocess.run(['umount', str(disk)])
    r = cli(moved, 'resume=auto')   # on a disk with room, the run continues exactly
    assert r.returncode == 0 and 'resuming at step 2' in r.stdout, r.stderr[-3000:]
    assert_same(final(moved), final(reference))


def test_resuming_where_an_epoch_ended_finishes_that_epoch(reference, tmp_path):
    "Stopped on an epoch's last step (or killed before its row, or during the final kNN): the resumed run writes that epoch's end."
    out = copy_run(reference, tmp_path / 'boundary', upto=8)
    (out / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in read_metrics(out) if r['step'] < 8))   # no row for epoch 1
    with (out / 'steps.jsonl').open('a') as f: f.write('{"step": 9, "loss": 1')                                  # a torn last line
    r = cli(out, 'resume=auto')
    assert r.returncode == 0 and 'resuming at step 8' in r.stdout and 'epoch 1: loss' in r.stdout, r.stderr[-3000:]
    assert 'steps.jsonl: skipping its last line, cut off mid-write' in r.stderr
    assert_same_record(out, reference)
    out = copy_run(reference, tmp_path / 'final_knn', upto=12)   # killed during the final kNN: its row was never written
    (out / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in read_metrics(out) if r['step'] < 12))
    r = cli(out, 'resume=auto')
    assert r.returncode == 0 and 'resuming at step 12' in r.stdout and 'kNN top-1' in r.stdout, r.stderr[-3000:]
    assert_same_record(out, reference)


def test_resume_auto_with_no_usable_checkpoint_changes_nothing(reference, tmp_path):
    out = copy_run(reference, tmp_path / 'run', upto=12)
    checkpoint_path(out, 2).write_bytes(b'')
    for p in list_checkpoints(out)[1:]: flip_bit(p)
    before = files(out)
    last = one_error_line(cli(out, 'resume=auto'))
    assert 'resume=auto found no checkpoint' in last and 'checkpoint-00000012.pt does not match the sha256' in last, last
    assert 'checkpoint-00000002.pt is empty (0 bytes)' in last and 'overwrite=true' in last, last
    assert files(out) == before   # the finished run's record is untouched
    (out / 'checkpoints.json').unlink()   # no checksums on record: each file's zip CRC-32s still catch a flipped bit
    last = one_error_line(cli(out, 'resume=auto'))
    assert 'checkpoint-00000012.pt fails its zip CRC check' in last and 'checkpoint-00000004.pt fails its zip CRC check' in last, last
    for p in list_checkpoints(out): p.unlink()
    before = files(out)
    last = one_error_line(cli(out, 'resume=auto'))   # no checkpoint at all, but epochs logged: not a fresh start either
    assert 'metrics.jsonl logged epochs up to step 12' in last, last
    assert files(out) == before
    r = cli(out, 'resume=auto', 'overwrite=true', 'max_steps=2')   # asked for: the old record goes, a new run starts
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in list_checkpoints(out)] == ['checkpoint-00000002.pt'] and [r['step'] for r in read_metrics(out)] == [0, 2]


def test_resume_path_never_replaces_another_run(reference, tmp_path):
    "resume=PATH of run A's checkpoint with out_dir = another run B: refused, B untouched; into A's own folder it continues."
    other = tmp_path / 'other'; other.mkdir()
    ckpt = load_checkpoint(checkpoint_path(reference, 6))
    save_checkpoint(checkpoint_path(other, 6), **{**ckpt, 'run_id': 'another-run'})   # the same state, as another run's
    b = copy_run(reference, tmp_path / 'b', upto=12)
    before = files(b)
    last = one_error_line(cli(b, f'resume={checkpoint_path(other, 6)}'))
    assert 'holds another run (6 checkpoint(s), newest checkpoint-00000012.pt' in last and 'than ' + str(checkpoint_path(other, 6)) in last, last
    assert files(b) == before
    a = copy_run(reference, tmp_path / 'a', upto=6)
    r = cli(a, f'resume={checkpoint_path(a, 6)}')
    assert r.returncode == 0 and 'resuming at step 6' in r.stdout, r.stderr[-3000:]
    assert_same_record(a, reference)


def test_sigterm_to_a_papermill_run_stops_it_cleanly(reference, tmp_path):
    """`kill -TERM -PGID` on papermill (what SLURM and `make demo`'s Ctrl-C send): the kernel, in its own session, hears of
    it through its parent's end, finishes the step, checkpoints and says so in the job's log; the run then resumes exactly."""
    out = tmp_path / 'run'
    params = [a for kv in tiny(batch_size=64, knn_every=0, log_every=1, max_steps=12, checkpoint_every=100, keep_last=10).items()
              for a in ('-p', kv[0], str(kv[1]))]
    p = subprocess.Popen([str(BIN / 'papermill'), 'nbs/experiments/pretrain.ipynb', str(tmp_path / 'out.ipynb'), '-f', 'configs/cpu_demo.yaml',
                          *params, '-p', 'out_dir', str(out), '--no-progress-bar'], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True, env=QUIET_THREADS)
    wait_for_steps(out, 3, p)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=300)   # the kernel holds papermill's stderr: this returns when the kernel has ended too
    assert p.returncode != 0 and "Stopped by the end of the kernel's parent process" in err, err[-3000:]
    stopped = load_checkpoint(list_checkpoints(out)[-1])['step']   # no periodic checkpoint: the stop wrote this one
    assert 3 <= stopped < 12
    r = cli(out, 'resume=auto', 'checkpoint_every=100')
    assert r.returncode == 0 and f'resuming at step {stopped}' in r.stdout, r.stderr[-3000:]
    a, b = load_checkpoint(checkpoint_path(out, 12)), load_checkpoint(checkpoint_path(reference, 12))
    assert_same(a['model'], b['model'])
    assert record(out, 'steps') == record(reference, 'steps') and record(out) == record(reference)
