"""`bench/gpu_check.py --quick`: every part of the GPU check runs on the CPU (tiny) and reports (the 2-rank NCCL part skips,
saying why), a failing part does not hide the others, and no file is written unless --out is given."""
import json, subprocess, sys

from helpers import ENV, REPO
PARTS = ['flops', 'train/bf16', 'train/bf16/channels_last', 'train/bf16/channels_last/compile', 'train/fp16', 'train/fp16/channels_last',
         'train/bf16/channels_last/multires', 'train/bf16/channels_last/cudnn_benchmark', 'precision', 'nan_stops', 'pipeline/cpu_workers',
         'pipeline/device_augment', 'pipeline/while_training', 'ddp/2_ranks', 'ddp', 'knn']


def gpu_check(out, *args):
    "The quick check run in `out`'s folder (it must write nothing there but `out`)."
    return subprocess.run([sys.executable, str(REPO / 'bench/gpu_check.py'), '--quick', '--out', str(out), *args], cwd=out.parent,
                          capture_output=True, text=True, timeout=1800, env={**ENV, 'PYTHONPATH': str(REPO)})


def test_quick_gpu_check_runs_every_part(tmp_path):
    r = gpu_check(tmp_path / 'check.json')
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    res = json.loads((tmp_path / 'check.json').read_text())
    assert list(res['parts']) == PARTS
    assert not [k for k, v in res['parts'].items() if k != 'ddp/2_ranks' and ('error' in v or v.get('skipped'))], res['parts']
    assert res['parts']['ddp/2_ranks']['skipped'] and 'needs 2' in res['parts']['ddp/2_ranks']['reason']
    assert [p.name for p in tmp_path.iterdir()] == ['check.json']   # nothing else written in the working folder
    assert res['meta']['quick'] and res['meta']['device'] == 'cpu'
    parts = res['parts']
    for name in PARTS:
        if name.startswith(('train/', 'pipeline/')) or name == 'ddp': assert parts[name]['images_per_s'] > 0, name
    assert parts['pipeline/while_training']['batches'] >= 50 and 0 <= parts['pipeline/while_training']['waiting_for_data'] < 1
    for prec in ('bf16', 'fp16'):   # closeness to fp32 on the same batch, through the trainer's forward-backward
        assert parts['precision'][prec]['grad_cosine'] > 0.95 and parts['precision'][prec]['loss_rel_diff'] < 0.05, parts['precision']
    assert parts['nan_stops']['stopped'] and 'Loss became non-finite at step 1' in parts['nan_stops']['message']
    compiled = parts['train/bf16/channels_last/compile']
    assert compiled['graph_breaks'] >= 0 and compiled['compiled_vs_eager_loss_rel_diff'] < 1e-2
    assert parts['train/fp16']['precision'] == 'fp16' and parts['train/fp16']['grad_scale'] > 0   # the scaler ran
    assert parts['train/bf16/channels_last/compile']['compile'] == 'aot_eager'
    assert parts['flops']['train_step_gflop_per_image'] > 3 * parts['flops']['backbone_forward_gflop_per_image']   # 2 views, fwd + bwd
    assert parts['train/bf16']['tflops'] > 0 and 'tflops' not in parts['train/bf16/channels_last/multires']
    assert parts['ddp']['backend'] == 'gloo' and parts['ddp']['sync_bn'] == 'GlooSyncBatchNorm'
    assert parts['knn']['agreement_with_cpu'] == 1.0 and parts['knn']['top1'] > 90
    assert 'train/bf16/channels_last/compile' in r.stdout and '15 parts ok, 0 failed, 1 skipped' in r.stdout   # the printed table


def test_a_failing_part_does_not_hide_the_others(tmp_path):
    "A batch of 4 is too small for the deputy band (2, 10): every model part fails with that error, the others still run."
    r = gpu_check(tmp_path / 'check.json', '--batch_size', '4', '--skip', 'knn')
    assert r.returncode == 1
    parts = json.loads((tmp_path / 'check.json').read_text())['parts']
    assert list(parts) == PARTS and parts['knn'] == {'skipped': True}
    for name in PARTS:
        if name in ('pipeline/cpu_workers', 'pipeline/device_augment'): assert 'error' not in parts[name] and parts[name]['images_per_s'] > 0
        elif name not in ('knn', 'ddp/2_ranks'): assert 'needs at least 10 negatives' in parts[name]['error'], (name, parts[name])
    assert '2 parts ok, 12 failed, 2 skipped' in r.stdout, r.stdout[-2000:]


def test_no_file_without_out(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / 'bench/gpu_check.py'), '--quick', '--skip', 'train', 'pipeline', 'ddp', 'knn', 'flops',
                        'precision'], cwd=tmp_path, capture_output=True, text=True, timeout=1800, env={**ENV, 'PYTHONPATH': str(REPO)})
    assert r.returncode == 0 and 'no file written' in r.stdout, (r.stdout[-2000:], r.stderr[-2000:])
    assert list(tmp_path.iterdir()) == []
