"""torchrun's elastic restarts and several nodes, on tiny two-process CPU runs on this machine, compared with an
uninterrupted one-node run of the same parameters: a killed worker is restarted (`--max_restarts`) and the job resumes by
itself (`resume=auto` on every launch); two nodes (two launchers, c10d rendezvous on 127.0.0.1) train exactly as one node
with two processes; a SIGTERM to one node's launcher stops both nodes at the same step with a checkpoint."""
import os, signal, socket, subprocess, sys, time
import pytest
import torch
from triplet_ssl.runs import checkpoint_path, list_checkpoints, load_checkpoint, read_metrics
from helpers import REPO, as_args, tiny

# 2 processes × 32 images: a global batch of 64, 8 steps an epoch, 12 steps, a checkpoint every 2 steps. fp64: two "nodes" on
# one 2-core machine each take 2 threads where one node's two processes take 1 (train.py shares the cores between a node's
# processes), and in fp32 that reduction order alone moves step 12's loss by 2e-5; in fp64 only that rounding is left.
ARGS = ['configs/cpu_demo.yaml', *as_args(tiny(batch_size=32, knn_every=0, log_every=1, max_steps=12, checkpoint_every=2, keep_last=10,
                                               num_workers=0, precision='fp64')), 'resume=auto']   # the same command on every (re)start
ENV = {**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE'}
TIMING = ('images_per_s', 'epoch_seconds')


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def torchrun(out, *launcher):
    return [sys.executable, '-m', 'torch.distributed.run', *launcher, '-m', 'triplet_ssl.train', *ARGS, f'out_dir={out}']


def start(cmd):
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=ENV)


def wait_for_steps(out, n, *procs, limit=600):
    deadline = time.time() + limit
    while len(read_metrics(out, 'steps')) < n:
        for p in procs: assert p.poll() is None, p.communicate()
        assert time.time() < deadline, 'the run did not get going'
        time.sleep(0.05)


def record(out, name):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(out, name)]


def assert_same_run(out, ref, rtol=0.0):
    "Bit-identical weights and rows (rtol=0), or equal up to `rtol` (another summation order of the same numbers)."
    a, b = load_checkpoint(checkpoint_path(out, 12)), load_checkpoint(checkpoint_path(ref, 12))
    for k, v in b['model'].items():
        assert torch.equal(a['model'][k], v) if rtol == 0 else torch.allclose(a['model'][k], v, rtol=rtol, atol=rtol), k
    for name in ('steps', 'metrics'):
        mine, theirs = record(out, name), record(ref, name)
        assert [r.keys() for r in mine] == [r.keys() for r in theirs], name
        for x, y in zip(mine, theirs):
            for k, v in y.items(): assert x[k] == v or (rtol and x[k] is not None and abs(x[k] - v) <= rtol * abs(v)), (name, k, x[k], v)


def workers(agent):
    "The training processes torchrun's agent `agent` started, by local rank."
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1]) != agent: continue
            env = dict(kv.split('=', 1) for kv in open(f'/proc/{pid}/environ').read().split('\0') if '=' in kv)
        except (OSError, ValueError, IndexError): continue
        if 'LOCAL_RANK' in env: found[int(env['LOCAL_RANK'])] = int(pid)
    return found


@pytest.fixture(scope='module')
def one_node(tmp_path_factory):
    out = tmp_path_factory.mktemp('elastic') / 'one_node'
    p = start(torchrun(out, '--nnodes=1', '--nproc_per_node=2', '--rdzv_backend=c10d', f'--rdzv_endpoint=127.0.0.1:{free_port()}'))
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-3000:]
    return out


def test_a_killed_worker_is_restarted_and_the_job_resumes_by_itself(one_node, tmp_path):
    out = tmp_path / 'run'
    p = start(torchrun(out, '--nnodes=1', '--nproc_per_node=2', '--max_restarts=1', '--rdzv_backend=c10d',
                       f'--rdzv_endpoint=127.0.0.1:{free_port()}'))
    wait_for_steps(out, 3, p)
    os.kill(workers(p.pid)[1], signal.SIGKILL)   # a worker dies (out of memory, a node fault): kill -9
    stdout, err = p.communicate(timeout=900)
    assert p.returncode == 0 and 'resuming at step' in stdout, err[-3000:]
    assert_same_run(out, one_node)   # bit-identical weights, every step and epoch row


def test_two_nodes_train_as_one_and_stop_together(one_node, tmp_path):
    def nodes(out):
        port = free_port()
        return [start(torchrun(out, '--nnodes=2', f'--node_rank={rank}', '--nproc_per_node=1', '--rdzv_backend=c10d',
                               f'--rdzv_endpoint=127.0.0.1:{port}', '--rdzv_id=two-nodes')) for rank in (0, 1)]
    out = tmp_path / 'two'
    for p in nodes(out):
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    assert_same_run(out, one_node, rtol=1e-9)   # measured: weights 2e-14, losses 1e-16 apart (other thread counts: other summation order)
    out = tmp_path / 'stopped'
    a, b = nodes(out)
    wait_for_steps(out, 3, a, b)
    os.kill(b.pid, signal.SIGTERM)   # one node's launcher is pre-empted: it passes SIGTERM to its worker
    errs = [p.communicate(timeout=600)[1] for p in (a, b)]
    assert any('Stopped by' in e for e in errs), [e[-2000:] for e in errs]
    stopped = load_checkpoint(list_checkpoints(out)[-1])['step']
    assert 3 <= stopped < 12 and not list(out.glob('*.tmp'))
    assert [r['step'] for r in read_metrics(out, 'steps')] == list(range(1, stopped + 1))
