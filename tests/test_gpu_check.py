"""`bench/gpu_check.py --quick`: every part of the GPU check runs on the CPU (tiny) and reports, and a failing part
does not hide the others."""
import json, subprocess, sys

from helpers import ENV, REPO
PARTS = ['flops', 'train/bf16', 'train/bf16/channels_last', 'train/bf16/channels_last/compile', 'train/fp16', 'train/fp16/channels_last',
         'train/bf16/channels_last/multires', 'pipeline/cpu_workers', 'pipeline/device_augment', 'ddp', 'knn']


def gpu_check(out, *args):
    return subprocess.run([sys.executable, 'bench/gpu_check.py', '--quick', '--out', str(out), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=ENV)


def test_quick_gpu_check_runs_every_part(tmp_path):
    r = gpu_check(tmp_path / 'check.json')
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    res = json.loads((tmp_path / 'check.json').read_text())
    assert list(res['parts']) == PARTS
    assert not [k for k, v in res['parts'].items() if 'error' in v or v.get('skipped')], res['parts']
    assert res['meta']['quick'] and res['meta']['device'] == 'cpu'
    parts = res['parts']
    for name in PARTS:
        if name.startswith(('train/', 'pipeline/')) or name == 'ddp': assert parts[name]['images_per_s'] > 0, name
    assert parts['train/fp16']['precision'] == 'fp16' and parts['train/fp16']['grad_scale'] > 0   # the scaler ran
    assert parts['train/bf16/channels_last/compile']['compile'] == 'aot_eager'
    assert parts['flops']['train_step_gflop_per_image'] > 3 * parts['flops']['backbone_forward_gflop_per_image']   # 2 views, fwd + bwd
    assert parts['train/bf16']['tflops'] > 0 and 'tflops' not in parts['train/bf16/channels_last/multires']
    assert parts['ddp']['backend'] == 'gloo' and parts['ddp']['sync_bn'] == 'GlooSyncBatchNorm'
    assert parts['knn']['agreement_with_cpu'] == 1.0 and parts['knn']['top1'] > 90
    assert 'train/bf16/channels_last/compile' in r.stdout and '11 parts ok, 0 failed, 0 skipped' in r.stdout   # the printed table


def test_a_failing_part_does_not_hide_the_others(tmp_path):
    "A batch of 4 is too small for the deputy band (2, 10): every model part fails with that error, the others still run."
    r = gpu_check(tmp_path / 'check.json', '--batch_size', '4', '--skip', 'knn')
    assert r.returncode == 1
    parts = json.loads((tmp_path / 'check.json').read_text())['parts']
    assert list(parts) == PARTS and parts['knn'] == {'skipped': True}
    for name in PARTS:
        if name.startswith('pipeline/'): assert 'error' not in parts[name] and parts[name]['images_per_s'] > 0
        elif name != 'knn': assert 'needs at least 10 negatives' in parts[name]['error'], (name, parts[name])
    assert '2 parts ok, 8 failed, 1 skipped' in r.stdout, r.stdout[-2000:]
