"""Detection transfer end to end: the export CLI, and Faster R-CNN fine-tuned on a synthetic VOC-format dataset."""
import pickle, subprocess, sys, time
from pathlib import Path
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_export_cli_round_trip(tmp_path):
    from triplet_ssl.detection import detectron2_to_torchvision
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.train import save_checkpoint
    model = TripletSSL(build_backbone('resnet50'), 64, 16, 64)
    save_checkpoint(tmp_path / 'ckpt.pt', model=model.state_dict(), config=dict(arch='resnet50'), epoch=1, step=10)
    r = run('-m', 'triplet_ssl.detection', 'export', str(tmp_path / 'ckpt.pt'), str(tmp_path / 'r50.pkl'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'wrote' in r.stdout and '265 tensors' in r.stdout
    with open(tmp_path / 'r50.pkl', 'rb') as f: raw = pickle.load(f)
    assert raw['__author__'] == 'triplet-ssl' and raw['matching_heuristics'] is True
    assert raw['model']['res5.2.conv3.norm.running_var'].shape == (2048,)
    back = detectron2_to_torchvision(raw)
    for k, v in model.backbone.state_dict().items():
        if not k.endswith('num_batches_tracked'): assert torch.equal(back[k], v), k


def test_export_cli_errors_are_clear(tmp_path):
    r = run('-m', 'triplet_ssl.detection', 'export', str(tmp_path / 'missing.pt'), str(tmp_path / 'x.pkl'))
    assert r.returncode != 0 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_faster_rcnn_learns_synthetic_voc(tmp_path):
    "A few hundred CPU steps of a ResNet-18 Faster R-CNN (FPN, from scratch) on rectangles vs ellipses reach a clear AP50."
    from triplet_ssl.detection import SHAPES, VOCDetection, build_detector, evaluate_detector, finetune, write_synthetic_voc
    torch.set_num_threads(2)
    root = write_synthetic_voc(tmp_path / 'voc', n_train=256, n_test=64, size=64, seed=0)
    train, test = VOCDetection(root, 'trainval', SHAPES), VOCDetection(root, 'test', SHAPES)
    torch.manual_seed(0)
    model = build_detector('resnet18', num_classes=2, norm='bn', min_size=64, max_size=64, fpn_channels=64,
                           anchor_sizes=(8, 16, 32, 64, 128), representation_size=256,
                           rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100,
                           rpn_post_nms_top_n_test=50, rpn_batch_size_per_image=64, box_batch_size_per_image=32)
    untrained = evaluate_detector(model, test, 2)
    t0 = time.time()
    losses = finetune(model, train, steps=200, lr=0.02, batch_size=8, warmup=20, log_every=25)
    result = evaluate_detector(model, test, 2)
    print(f"untrained AP50 {untrained['AP50']:.1f} -> trained {result} in {time.time() - t0:.0f}s")
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert result["AP50"] > 30 and result["AP"] > 10 and untrained['AP50'] < 5
    assert result['AP50'] >= result['AP75'] and result['AP50'] >= result['AP']
