"""One checkpoint reader (09_interop's `read_backbone`, over 06_runs' `read_checkpoint`) behind every consumer: linear
evaluation's loader, the detectron2 export, the detectors' initialisation and re-ID's command line read this package's
runs, the authors' OpenSelfSup/mmcv files and torchvision files to the same weights, and a file they cannot use ends
each of them with the reader's `CheckpointError` message, not a traceback from inside torch."""
import ast
import numpy as np
import pytest
import torch

from helpers import REPO
FORMATS = ('triplet-ssl', 'openselfsup', 'torchvision')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "A random ResNet-18 (BN statistics too, so a swapped or skipped tensor shows) written in the three formats, plus the reference."
    from triplet_ssl.models import build_backbone
    from triplet_ssl.runs import save_checkpoint
    d = tmp_path_factory.mktemp('formats')
    torch.manual_seed(0)
    net = build_backbone('resnet18').eval()
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if v.is_floating_point(): v.copy_(torch.rand_like(v) + 0.5 if k.endswith('running_var') else torch.randn_like(v) * 0.1)
    sd = net.state_dict()
    shifted = {k: v + 1 for k, v in sd.items()}   # a second network in the same file that must not be taken
    save_checkpoint(d / 'run.pt', model={**{f'backbone.{k}': v for k, v in sd.items()}, **{f'target_network.0.{k}': v for k, v in shifted.items()},
                                         'projector.0.weight': torch.zeros(8, 512)}, config=dict(arch='resnet18'), step=1)
    torch.save(dict(meta=dict(epoch=200), state_dict={**{f'backbone.{k}': v for k, v in sd.items()}, **{f'target_net.0.{k}': v for k, v in shifted.items()},
                                                     'neck.mlp.0.weight': torch.zeros(8, 512)}), d / 'authors.pth')
    torch.save({**sd, 'fc.weight': torch.zeros(1000, 512), 'fc.bias': torch.zeros(1000)}, d / 'torchvision.pth')
    (d / 'empty.pt').write_bytes(b'')
    (d / 'truncated.pt').write_bytes((d / 'torchvision.pth').read_bytes()[:4096])
    paths = dict(zip(FORMATS, (d / 'run.pt', d / 'authors.pth', d / 'torchvision.pth')))
    return d, paths, net


def _same(sd, ref):
    for k, v in ref.items():
        if not k.endswith('num_batches_tracked'): assert torch.equal(sd[k], v), k


def _arch(fmt): return None if fmt == 'triplet-ssl' else 'resnet18'   # only this package's runs record it


@pytest.mark.parametrize('fmt', FORMATS)
def test_linear_loader_reads_every_format(files, fmt):
    from triplet_ssl.interop import load_backbone, read_backbone
    _, paths, net = files
    sd, arch, found = read_backbone(paths[fmt])
    assert (found, arch) == (fmt, 'resnet18' if fmt == 'triplet-ssl' else None)
    _same(load_backbone(paths[fmt], _arch(fmt), 3).state_dict(), net.state_dict())   # as 12_linear calls it


@pytest.mark.parametrize('fmt', FORMATS)
def test_detectron2_export_reads_every_format(files, fmt):
    from triplet_ssl.interop import detectron2_to_torchvision, export_detectron2, load_detectron2_pkl, read_backbone
    d, paths, net = files
    out = export_detectron2(paths[fmt], d / f'{fmt}.pkl')
    _same(detectron2_to_torchvision(load_detectron2_pkl(out)), net.state_dict())
    sd, arch, found = read_backbone(out)   # and back through the one reader
    assert (arch, found) == (None, 'detectron2')
    _same(sd, net.state_dict())


@pytest.mark.parametrize('fmt', FORMATS)
def test_detector_initialises_from_every_format(files, fmt):
    from triplet_ssl.detection import build_detector
    _, paths, net = files
    det = build_detector('resnet18', 2, weights=paths[fmt], norm='bn', min_size=64, max_size=64)
    body = det.backbone.body.state_dict()
    assert len(body) == len(net.state_dict())
    _same(body, net.state_dict())


@pytest.fixture(scope='module')
def reid_reference(files):
    from triplet_ssl.reid import evaluate_sysu30k, write_synthetic_sysu30k
    d, _, net = files
    root = write_synthetic_sysu30k(d / 'sysu', n_ids=2, n_distractors=2)
    evaluate_sysu30k(net, root, d / 'reid_ref', batch_size=8, num_workers=0)
    return root, np.load(d / 'reid_ref' / 'gallery.npy')


@pytest.mark.slow   # three feature extractions at 256×128: about 15 s on a loaded machine
@pytest.mark.parametrize('fmt', FORMATS)
def test_reid_command_reads_every_format(files, reid_reference, fmt, capsys):
    "`python -m triplet_ssl.reid CHECKPOINT ...` (its main, in this process): the features of the reference network, bit for bit."
    from triplet_ssl.reid import main
    d, paths, _ = files
    root, gallery = reid_reference
    main([str(paths[fmt]), str(root), '--out-dir', str(d / f'reid_{fmt}'), '--batch-size', '8', '--num-workers', '0', '--device', 'cpu',
          *(['--arch', _arch(fmt)] if _arch(fmt) else [])])
    assert '"rank1"' in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(d / f'reid_{fmt}' / 'gallery.npy'), gallery)


@pytest.mark.parametrize('fmt', ('openselfsup', 'torchvision'))
def test_init_checkpoint_reads_other_formats(files, fmt):
    "`init_checkpoint` of a pretraining run: another format's backbone starts both the online and the target network."
    from triplet_ssl.interop import init_from_checkpoint
    from triplet_ssl.models import TripletSSL, build_backbone
    from helpers import LOSS
    _, paths, net = files
    model = TripletSSL(build_backbone('resnet18'), 32, 16, 32, **LOSS)
    assert init_from_checkpoint(model, paths[fmt], 'resnet18') == fmt
    _same(model.backbone.state_dict(), net.state_dict()); _same(model.target_network[0].state_dict(), net.state_dict())


BAD = [('empty.pt', 'is empty (0 bytes)'), ('truncated.pt', 'cannot be read as a checkpoint')]


@pytest.mark.parametrize('name,message', BAD)
def test_bad_file_gives_the_readers_message_in_every_consumer(files, name, message):
    from triplet_ssl.detection import build_detector
    from triplet_ssl.detectron2_runner import main as detection_main
    from triplet_ssl.interop import export_detectron2, load_backbone
    from triplet_ssl.reid import main as reid_main
    from triplet_ssl.runs import CheckpointError
    d, _, _ = files
    bad = d / name
    from triplet_ssl.interop import init_from_checkpoint
    from triplet_ssl.models import TripletSSL, build_backbone
    from helpers import LOSS
    for call in (lambda: load_backbone(bad, 'resnet18', 3), lambda: export_detectron2(bad, d / 'x.pkl'),
                 lambda: build_detector('resnet18', 2, weights=bad),
                 lambda: init_from_checkpoint(TripletSSL(build_backbone('resnet18'), 32, 16, 32, **LOSS), bad, 'resnet18')):
        with pytest.raises(CheckpointError) as e: call()
        assert str(bad) in str(e.value) and message in str(e.value)
    for cli in (lambda: detection_main(['export', str(bad), str(d / 'x.pkl')]),
                lambda: reid_main([str(bad), str(d / 'nowhere'), '--arch', 'resnet18', '--device', 'cpu'])):
        with pytest.raises(SystemExit) as e: cli()
        assert str(e.value.code).startswith(f'error: {bad}') and message in str(e.value.code)


def test_torch_load_is_called_in_one_place():
    "Only `runs.read_checkpoint` calls torch.load (weights_only, checksum, one vocabulary of errors)."
    def torch_load(n): return isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == 'load' and getattr(n.func.value, 'id', None) == 'torch'
    calls = [path.name for path in sorted((REPO / 'triplet_ssl').glob('*.py')) for n in ast.walk(ast.parse(path.read_text())) if torch_load(n)]
    assert calls == ['runs.py'], calls
    runs = ast.parse((REPO / 'triplet_ssl' / 'runs.py').read_text())
    reader = next(f for f in ast.walk(runs) if isinstance(f, ast.FunctionDef) and f.name == 'read_checkpoint')
    assert any(torch_load(n) for n in ast.walk(reader))
