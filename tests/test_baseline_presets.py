"""The baseline presets (configs/baselines/) are their papers' recipes: each defining value equals the table below, written
from the sources (MoCo v2: arXiv 2003.04297 and facebookresearch/moco main_moco.py, moco/builder.py; BYOL: arXiv 2006.07733 and
google-deepmind/deepmind-research byol/configs/byol.py for 1000 epochs), and each runs through the pretraining command on a
tiny setting (Fashion-MNIST, a narrow network, 2 steps) with the values that define the method left as the file sets them."""
import ast, json
import pytest
import yaml
from helpers import REPO, TINY, run_quiet

PRESETS = REPO / 'configs' / 'baselines'
SOURCES = {
    'mocov2_imagenet_r50_200ep': dict(   # main_moco.py defaults + the README's MoCo v2 flags: --lr 0.03 -b 256 --mlp --moco-t 0.2 --aug-plus --cos
        method='mocov2', arch='resnet50', dataset='imagenet', epochs=200, optimizer='sgd', lr=0.03, sgd_momentum=0.9,
        weight_decay=1e-4, warmup_epochs=0.0, temperature=0.2, queue_size=65536, base_momentum=0.999, momentum_schedule='constant',
        proj_hidden=2048, proj_dim=128, projector_bn=False, symmetric_loss=False, multires=False, precision='fp32'),
    'byol_imagenet_r50': dict(           # byol/configs/byol.py (1000 epochs), batch 4096, lr 0.2 x 4096/256
        method='byol', arch='resnet50', dataset='imagenet', epochs=1000, optimizer='lars', lr=0.2 * 4096 / 256, sgd_momentum=0.9,
        weight_decay=1.5e-6, warmup_epochs=10.0, base_momentum=0.996, momentum_schedule='cosine', proj_hidden=4096, proj_dim=256,
        pred_hidden=4096, projector_bn=True, symmetric_loss=True, sync_bn=True, multires=False),
}
GLOBAL_BATCH = {'mocov2_imagenet_r50_200ep': 256, 'byol_imagenet_r50': 4096}


def test_presets_are_their_papers_recipes():
    from triplet_ssl.config import load_config
    assert sorted(p.stem for p in PRESETS.glob('*.yaml')) == sorted(SOURCES)
    for name, expect in SOURCES.items():
        cfg = load_config(PRESETS / f'{name}.yaml')
        assert {k: getattr(cfg, k) for k in expect} == pytest.approx(expect), name
        gpus = yaml.safe_load((PRESETS / f'{name}.yaml').read_text())['gpus']
        assert gpus * cfg.batch_size * cfg.accum_steps == GLOBAL_BATCH[name], name


def test_presets_are_pretrain_notebook_parameters():
    "`papermill nbs/experiments/pretrain.ipynb OUT -f PRESET` accepts every key of each preset."
    cells = json.loads((REPO / 'nbs' / 'experiments' / 'pretrain.ipynb').read_text())['cells']
    cell = next(c for c in cells if 'parameters' in c['metadata'].get('tags', []))
    params = {n.target.id for n in ast.parse(''.join(cell['source'])).body if isinstance(n, ast.AnnAssign)}
    for name in SOURCES: assert set(yaml.safe_load((PRESETS / f'{name}.yaml').read_text())) <= params, name


@pytest.mark.parametrize('name', sorted(SOURCES))
def test_preset_runs_two_steps(name, tmp_path):
    "`python -m triplet_ssl.train PRESET key=value ...` on Fashion-MNIST: 2 steps, the method's values untouched."
    tiny = {**TINY, 'dataset': 'fashion_mnist', 'data_dir': None, 'arch': 'narrow_resnet', 'batch_size': 32, 'max_steps': 2,
            'queue_size': 128, 'precision': 'fp32', 'channels_last': False, 'num_workers': 0, 'knn_every': 0, 'log_every': 1,
            'checkpoint_every': None, 'out_dir': str(tmp_path)}
    args = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in tiny.items()]
    r = run_quiet('-m', 'triplet_ssl.train', f'configs/baselines/{name}.yaml', *args, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / 'config.yaml').read_text())
    kept = {k: v for k, v in SOURCES[name].items() if k not in ('arch', 'dataset', 'queue_size', 'proj_hidden', 'proj_dim', 'pred_hidden',
                                                                'precision')}
    assert {k: saved[k] for k in kept} == pytest.approx(kept)
    from triplet_ssl.runs import read_metrics
    steps = read_metrics(tmp_path, 'steps')
    assert [row['step'] for row in steps] == [1, 2]
    if SOURCES[name]['momentum_schedule'] == 'constant':
        assert [row['momentum'] for row in steps] == [SOURCES[name]['base_momentum']] * 2
