"""SYSU-30k evaluation end to end on a tiny tree in the real on-disk layout, and the metrics against a full sort."""
import json, subprocess, sys
from pathlib import Path
import numpy as np
import torch
from helpers import LOSS, REPO


def test_metrics_hand_computed_with_junk_and_distractors():
    from triplet_ssl.reid import reid_metrics
    # query 1 (id 1, cam 2): junk 0.95 (id 1, cam 2), distractor 0.9, good 0.8, wrong 0.7, good 0.6 -> goods at ranks 2 and 4
    # query 2 (id 2, cam 2): its good image first
    qf = np.eye(2, 4, dtype=np.float32)
    gf = np.zeros((6, 4), np.float32)
    for r, (j, s) in enumerate([(0, 0.95), (0, 0.9), (0, 0.8), (0, 0.7), (0, 0.6), (1, 0.99)]): gf[r, j], gf[r, 3] = s, np.sqrt(1 - s * s)
    r = reid_metrics(qf, [1, 2], [2, 2], gf, [1, 0, 1, 5, 1, 2], [2, 1, 1, 1, 3, 1], block_size=4, query_chunk=1)
    assert (r['rank1'], r['rank5']) == (50.0, 100.0)
    assert abs(r['mAP_standard'] - 100 * (0.5 * (1 / 2 + 2 / 4) + 1) / 2) < 1e-9
    # the seed's trapezoid: goods at 0-based rows 1 and 3 -> ((0/1 + 1/2) / 2 + (1/3 + 2/4) / 2) / 2 = 1/3; query 2: 1
    assert abs(r['mAP'] - 100 * (1 / 3 + 1) / 2) < 1e-9 and r['mAP'] == r['mAP_trapezoid'] and r['ap'] == 'trapezoid'


def test_sysu30k_layout_end_to_end(tmp_path):
    "A synthetic sysu_test_set_all/ with distractors and junk: every query's copy is found first, junk does not count."
    from triplet_ssl.models import build_backbone
    from triplet_ssl.reid import evaluate_sysu30k, write_synthetic_sysu30k
    root = write_synthetic_sysu30k(tmp_path, n_ids=6, n_distractors=40)
    torch.manual_seed(0)
    r = evaluate_sysu30k(build_backbone('resnet18'), root, tmp_path / 'work', batch_size=16, num_workers=0, block_size=7)
    assert (r['rank1'], r['rank5'], r['mAP'], r['queries'], r['distractors'], r['gallery_images']) == (100.0, 100.0, 100.0, 6, 40, 52)
    assert json.loads((tmp_path / 'work' / 'metrics.json').read_text())['rank1'] == 100.0
    # reuse: scoring only, from the stored features
    r2 = evaluate_sysu30k(None, root, tmp_path / 'work', reuse=True)
    assert r2['rank1'] == 100.0 and r2['extract_seconds'] < 5


def test_reid_notebook_runs_with_papermill(tmp_path):
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.reid import write_synthetic_sysu30k
    from triplet_ssl.runs import save_checkpoint
    root = write_synthetic_sysu30k(tmp_path / 'data', n_ids=3, n_distractors=10)
    save_checkpoint(tmp_path / 'ckpt.pt', model=TripletSSL(build_backbone('resnet18'), 32, 16, 32, **LOSS).state_dict(), config=dict(arch='resnet18'))
    out = tmp_path / 'run'
    params = dict(checkpoint=str(tmp_path / 'ckpt.pt'), test_root=str(root), out_dir=str(out), batch_size=8, num_workers=0, device='cpu')
    r = subprocess.run([str(Path(sys.executable).parent / 'papermill'), 'nbs/experiments/reid.ipynb', str(tmp_path / 'executed.ipynb'),
                        *[a for k, v in params.items() for a in ('-p', k, str(v))], '--no-progress-bar'],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads((out / 'metrics.json').read_text())['rank1'] == 100.0
