"""Re-ID preprocessing as the authors' test script (github.com/wanggrun/triplet Self-Supervised-ReID/test_sysu_combine.py):
`transforms.Resize((256, 128), interpolation=3)` (PIL bicubic) -> ToTensor -> Normalize(ImageNet), and the flip feature
accumulated in a loop that L2-normalises after each view: normalize(normalize(g(x)) + g(flip x)); features kept in float32."""
import json
import numpy as np
import pytest
import torch
from helpers import LOSS, run


def _pixels(x):   # g: a 'network' whose feature is the image's pixels
    return x.reshape(len(x), -1)


@pytest.mark.parametrize('x, authors, ours', [
    # g(x) = (3, 0), g(flip x) = (0, 3): authors n((1, 0) + (0, 3)) = (1, 3)/sqrt(10); ours n((3, 3)) = (1, 1)/sqrt(2)
    ([3., 0.], [1 / 10 ** .5, 3 / 10 ** .5], [2 ** -.5, 2 ** -.5]),
    # g(x) = (1, 0) already unit: both (1, 1)/sqrt(2)
    ([1., 0.], [2 ** -.5, 2 ** -.5], [2 ** -.5, 2 ** -.5]),
    # g(x) = (0.5, 2), g(flip x) = (2, 0.5): |g(x)| = sqrt(4.25) = 2.06155; (0.24254, 0.97014) + (2, 0.5) = (2.24254, 1.47014),
    # norm sqrt(7.19031) = 2.68147 -> (0.83631, 0.54826); ours n((2.5, 2.5))
    ([.5, 2.], [0.8363081, 0.5482598], [2 ** -.5, 2 ** -.5]),
    # a 1x4 image: g(x) = (4, 0, 0, 0), flip (0, 0, 0, 4): authors (1, 0, 0, 4)/sqrt(17); ours (1, 0, 0, 1)/sqrt(2)
    ([4., 0., 0., 0.], [1 / 17 ** .5, 0, 0, 4 / 17 ** .5], [2 ** -.5, 0, 0, 2 ** -.5]),
])
def test_flip_formulas_hand_computed(x, authors, ours):
    from triplet_ssl.reid import flip_features
    img = torch.tensor(x).reshape(1, 1, 1, -1)
    np.testing.assert_allclose(flip_features(_pixels, img).numpy()[0], authors, atol=1e-6)
    np.testing.assert_allclose(flip_features(_pixels, img, 'sum').numpy()[0], ours, atol=1e-6)


def test_bicubic_equals_the_authors_transform(tmp_path):
    "ReidImages' default == torchvision's legacy Resize((256, 128), interpolation=3) on the PIL image + ToTensor + Normalize, exactly."
    from PIL import Image
    from torchvision import transforms
    from triplet_ssl.reid import IMAGENET_MEAN, IMAGENET_STD, ReidImages
    rng = np.random.default_rng(0)
    paths = []
    for k, (h, w) in enumerate([(97, 41), (300, 150), (256, 128)]):
        paths.append(tmp_path / f'{k}.jpg'); Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1], quality=90)
    theirs = transforms.Compose([transforms.Resize((256, 128), interpolation=3), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    ours, bilinear = ReidImages(paths), ReidImages(paths, interpolation='bilinear')
    for k, p in enumerate(paths):
        with Image.open(p) as im: ref = theirs(im.convert('RGB'))
        assert ours[k].shape == (3, 256, 128) and torch.equal(ours[k], ref), k
        if k < 2: assert (bilinear[k] - ref).abs().max() > 0.05   # the other interpolation really differs


@pytest.mark.slow   # two CLI subprocesses
def test_cli_protocols_on_synthetic_gallery(tmp_path, capsys):
    "`--protocol authors` (default) stores float32 features and says so in metrics.json; `--protocol ours` runs too; an unknown one is refused."
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.reid import write_synthetic_sysu30k
    from triplet_ssl.runs import save_checkpoint
    root = write_synthetic_sysu30k(tmp_path / 'data', n_ids=3, n_distractors=6)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / 'ckpt.pt', model=TripletSSL(build_backbone('resnet18'), 32, 16, 32, **LOSS).state_dict(), config=dict(arch='resnet18'))
    for protocol, dtype in (('authors', np.float32), ('ours', np.float32)):
        out = tmp_path / protocol
        args = ['-m', 'triplet_ssl.reid', tmp_path / 'ckpt.pt', root, '--out-dir', out, '--batch-size', 8, '--num-workers', 0, '--device', 'cpu']
        r = run(*args, *(['--protocol', protocol] if protocol != 'authors' else []))
        assert r.returncode == 0, r.stderr[-3000:]
        m = json.loads((out / 'metrics.json').read_text())
        assert (m['protocol'], m['rank1']) == (protocol, 100.0)
        assert np.load(out / 'gallery.npy', mmap_mode='r').dtype == dtype
    from triplet_ssl.reid import main
    with pytest.raises(SystemExit): main([str(tmp_path / 'ckpt.pt'), str(root), '--protocol', 'mine'])
    assert "invalid choice: 'mine'" in capsys.readouterr().err
