"""The evaluation and conversion commands on bad input or a mix-up: one line `error: ...` naming the value or file and the
fix (their `main`, in this process), and results that are never silently replaced or scored from another checkpoint."""
import json, subprocess, sys
import pytest
import torch
from helpers import LOSS, REPO


def error_line(main, argv) -> str:
    with pytest.raises(SystemExit) as e: main(argv)
    message = str(e.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    return message


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    "Two resnet18 runs' checkpoints (random weights: two different networks) and a 1-channel one."
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.runs import save_checkpoint
    d = tmp_path_factory.mktemp('ckpts')
    for name, seed, channels in (('a', 0, 3), ('b', 1, 3), ('gray', 0, 1)):
        torch.manual_seed(seed)
        save_checkpoint(d / f'{name}.pt', model=TripletSSL(build_backbone('resnet18', channels), 32, 16, 32, **LOSS).state_dict(),
                        config=dict(arch='resnet18'))
    return d


def test_reid_reuse_scores_only_the_features_of_its_checkpoint(checkpoints, tmp_path):
    from triplet_ssl.reid import main, write_synthetic_sysu30k
    root = write_synthetic_sysu30k(tmp_path / 'sysu', n_ids=2, n_distractors=2)
    args = lambda name, *more: [str(checkpoints / f'{name}.pt'), str(root), '--out-dir', str(tmp_path / 'work'), '--batch-size', '8',
                                '--num-workers', '0', '--device', 'cpu', *more]
    main(args('a'))
    gallery = (tmp_path / 'work' / 'gallery.npy').read_bytes()
    last = error_line(main, args('b', '--reuse'))   # a's features are not b's
    assert 'the features in' in last and 'are of another checkpoint' in last and 'run without --reuse' in last, last
    assert (tmp_path / 'work' / 'gallery.npy').read_bytes() == gallery
    main(args('a', '--reuse'))                     # its own: scored again, nothing extracted
    assert json.loads((tmp_path / 'work' / 'features.json').read_text())['source'] and (tmp_path / 'work' / 'gallery.npy').read_bytes() == gallery
    last = error_line(main, args('gray'))          # a 1-channel backbone on RGB images: said before any convolution fails
    assert 'holds a backbone for 1-channel images' in last and 'pretrained on 3-channel images' in last, last


def test_both_exports_follow_one_rule(checkpoints, tmp_path):
    "detectron2_runner export and interop export refuse a 1-channel stem alike; a torchvision file without arch says how to pass it."
    from triplet_ssl.detectron2_runner import main as d2_main
    from triplet_ssl.interop import main as interop_main, read_backbone
    gray = str(checkpoints / 'gray.pt')
    for last in (error_line(d2_main, ['export', gray, str(tmp_path / 'x.pkl')]), error_line(interop_main, ['export', gray, str(tmp_path / 'x.pth')])):
        assert 'conv1 is (64, 1, 7, 7), not the 3-channel 7×7 stem' in last and 'pretrain on a 3-channel dataset' in last, last
    assert not list(tmp_path.iterdir())
    torch.save(read_backbone(checkpoints / 'a.pt')[0], tmp_path / 'tv.pth')
    last = error_line(interop_main, ['export', str(tmp_path / 'tv.pth'), str(tmp_path / 'out.pth')])
    assert 'does not record its arch: pass it after OUT' in last and 'resnet50' in last, last


def test_linear_refuses_bad_values_and_keeps_results(checkpoints, tmp_path):
    from triplet_ssl.linear import main
    ckpt = str(checkpoints / 'a.pt')
    assert 'lr must be a finite number >= 0, got nan' in error_line(main, [ckpt, 'lr=.nan'])
    last = error_line(main, [str(checkpoints), 'protocol=knn'])   # a folder where the checkpoint goes
    assert 'is a folder, not a file; give one of its checkpoints (it holds: a.pt, b.pt, gray.pt)' in last, last


def test_detection_module_says_where_its_commands_went():
    r = subprocess.run([sys.executable, '-m', 'triplet_ssl.detection', 'train', 'cfg.yaml'], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith('error: ') and 'python -m triplet_ssl.detectron2_runner train|export' in r.stderr, r.stderr
