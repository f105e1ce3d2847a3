"""The detection presets equal their sources value for value, read through detectron2's own config loader.

The tables below are written from the released files (read, not copied into the repository):
- the authors' (github.com/wanggrun/triplet, benchmarks/detection/configs/): Base-RCNN-C4-BN.yaml, then
  coco_R_50_C4_2x.yaml -> coco_R_50_C4_2x_moco.yaml, and pascal_voc_R_50_C4_24k.yaml -> pascal_voc_R_50_C4_24k_moco.yaml;
- MoCo's (github.com/facebookresearch/moco, detection/configs/): the same chain of names.
Each chain is applied, in order, to detectron2's `get_cfg()` defaults; the preset (a flat file) must resolve to the same
config in every key except the few that say where weights come from and how often to save.
"""
from pathlib import Path
import pytest
from helpers import REPO

PRESETS = REPO / 'configs' / 'detectron2'

# The authors' Base-RCNN-C4-BN.yaml
AUTHORS_BASE = {
    'MODEL.META_ARCHITECTURE': 'GeneralizedRCNN', 'MODEL.RPN.PRE_NMS_TOPK_TEST': 6000, 'MODEL.RPN.POST_NMS_TOPK_TEST': 1000,
    'MODEL.ROI_HEADS.NAME': 'Res5ROIHeadsExtraNorm', 'MODEL.BACKBONE.FREEZE_AT': 0, 'MODEL.RESNETS.NORM': 'SyncBN',
    'TEST.PRECISE_BN.ENABLED': True,
    'SOLVER.IMS_PER_BATCH': 16, 'SOLVER.BASE_LR': 0.05, 'SOLVER.LR_SCHEDULER_NAME': 'WarmupCosineLR', 'SOLVER.MAX_ITER': 180000,
    'SOLVER.MOMENTUM': 0.9, 'SOLVER.NESTEROV': False, 'SOLVER.REFERENCE_WORLD_SIZE': 0, 'SOLVER.WARMUP_FACTOR': 0.0001,
    'SOLVER.WARMUP_ITERS': 10000, 'SOLVER.WARMUP_METHOD': 'linear'}
# MoCo's Base-RCNN-C4-BN.yaml
MOCO_BASE = {
    'MODEL.META_ARCHITECTURE': 'GeneralizedRCNN', 'MODEL.RPN.PRE_NMS_TOPK_TEST': 6000, 'MODEL.RPN.POST_NMS_TOPK_TEST': 1000,
    'MODEL.ROI_HEADS.NAME': 'Res5ROIHeadsExtraNorm', 'MODEL.BACKBONE.FREEZE_AT': 0, 'MODEL.RESNETS.NORM': 'SyncBN',
    'TEST.PRECISE_BN.ENABLED': True, 'SOLVER.IMS_PER_BATCH': 16, 'SOLVER.BASE_LR': 0.02}
# coco_R_50_C4_2x.yaml (authors': 640..880; MoCo's: 640..800)
COCO_2X = lambda sizes: {
    'MODEL.MASK_ON': True, 'INPUT.MIN_SIZE_TRAIN': sizes, 'INPUT.MIN_SIZE_TEST': 800,
    'DATASETS.TRAIN': ('coco_2017_train',), 'DATASETS.TEST': ('coco_2017_val',), 'SOLVER.STEPS': (120000, 160000), 'SOLVER.MAX_ITER': 180000}
# pascal_voc_R_50_C4_24k.yaml (authors': 480..880 and no schedule of its own; MoCo's: 480..800, 24k iterations)
VOC = lambda sizes: {
    'MODEL.MASK_ON': False, 'MODEL.ROI_HEADS.NUM_CLASSES': 20, 'INPUT.MIN_SIZE_TRAIN': sizes, 'INPUT.MIN_SIZE_TEST': 800,
    'DATASETS.TRAIN': ('voc_2007_trainval', 'voc_2012_trainval'), 'DATASETS.TEST': ('voc_2007_test',)}
MOCO_VOC_SOLVER = {'SOLVER.STEPS': (18000, 22000), 'SOLVER.MAX_ITER': 24000, 'SOLVER.WARMUP_ITERS': 100}
# *_moco.yaml: self-supervised (torchvision-layout) weights
SSL_WEIGHTS = {'MODEL.PIXEL_MEAN': [123.675, 116.280, 103.530], 'MODEL.PIXEL_STD': [58.395, 57.120, 57.375],
               'MODEL.RESNETS.STRIDE_IN_1X1': False, 'INPUT.FORMAT': 'RGB'}
AUTHORS_COCO_SIZES = (640, 672, 704, 736, 768, 800, 832, 864, 880)
AUTHORS_VOC_SIZES = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800, 832, 864, 880)

SOURCES = {   # preset -> the chain of its source files, in _BASE_ order
    'authors_coco_R_50_C4_2x.yaml': [AUTHORS_BASE, COCO_2X(AUTHORS_COCO_SIZES), {**SSL_WEIGHTS, 'INPUT.MAX_SIZE_TRAIN': 1200}],
    'authors_voc_R_50_C4.yaml': [AUTHORS_BASE, VOC(AUTHORS_VOC_SIZES), SSL_WEIGHTS],
    'moco_coco_R_50_C4_2x.yaml': [MOCO_BASE, COCO_2X(AUTHORS_COCO_SIZES[:6]), SSL_WEIGHTS],
    'moco_voc_R_50_C4_24k.yaml': [MOCO_BASE, {**VOC(AUTHORS_VOC_SIZES[:11]), **MOCO_VOC_SOLVER}, SSL_WEIGHTS]}
# Ours on purpose: where the weights come from (the train command's argument) and how often to save.
NOT_PROTOCOL = {'MODEL.WEIGHTS', 'SOLVER.CHECKPOINT_PERIOD'}


def _flat(node, prefix=''):
    out = {}
    for k, v in node.items():
        if isinstance(v, dict): out.update(_flat(v, f'{prefix}{k}.'))
        else: out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


def _source_config(chain):
    "detectron2's defaults with the source files' values applied in order (merge_from_list: the same type checks as a file)."
    from detectron2.config import get_cfg
    cfg = get_cfg()
    for level in chain: cfg.merge_from_list([a for k, v in level.items() for a in (k, repr(v) if not isinstance(v, str) else v)])
    return _flat(cfg)


def _skip_without_detectron2():
    from triplet_ssl.detectron2_runner import DETECTRON2_MISSING, detectron2_available
    if not detectron2_available(): pytest.skip(DETECTRON2_MISSING)


def test_every_preset_has_a_source_table():
    assert sorted(p.name for p in PRESETS.glob('*.yaml')) == sorted(SOURCES)


@pytest.mark.parametrize('name', sorted(SOURCES))
def test_preset_equals_its_source_value_for_value(name):
    "The runner's own config builder (get_cfg + merge_from_file: unknown keys raise) resolves the preset to the source's config."
    _skip_without_detectron2()
    from triplet_ssl.detectron2_runner import detectron2_config
    ours, theirs = _flat(detectron2_config(PRESETS / name)), _source_config(SOURCES[name])
    assert set(ours) == set(theirs)
    diff = {k: (ours[k], theirs[k]) for k in ours if k not in NOT_PROTOCOL and ours[k] != theirs[k]}
    assert diff == {}, f'{name} differs from its source: {diff}'


def test_protocol_values_at_a_glance():
    "The values that define each protocol, read from the files with detectron2 (the issue's list), and the headers naming the source."
    _skip_without_detectron2()
    from triplet_ssl.detectron2_runner import detectron2_config
    keys = ('SOLVER.BASE_LR', 'SOLVER.LR_SCHEDULER_NAME', 'SOLVER.WARMUP_ITERS', 'SOLVER.WARMUP_FACTOR', 'SOLVER.MAX_ITER',
            'INPUT.MIN_SIZE_TRAIN', 'INPUT.MAX_SIZE_TRAIN', 'MODEL.MASK_ON')
    got = {name: tuple(_flat(detectron2_config(PRESETS / name))[k] for k in keys) for name in SOURCES}
    assert got['authors_coco_R_50_C4_2x.yaml'] == (0.05, 'WarmupCosineLR', 10000, 0.0001, 180000, AUTHORS_COCO_SIZES, 1200, True)
    assert got['authors_voc_R_50_C4.yaml'] == (0.05, 'WarmupCosineLR', 10000, 0.0001, 180000, AUTHORS_VOC_SIZES, 1333, False)
    assert got['moco_coco_R_50_C4_2x.yaml'] == (0.02, 'WarmupMultiStepLR', 1000, 0.001, 180000, AUTHORS_COCO_SIZES[:6], 1333, True)
    assert got['moco_voc_R_50_C4_24k.yaml'] == (0.02, 'WarmupMultiStepLR', 100, 0.001, 24000, AUTHORS_VOC_SIZES[:11], 1333, False)
    for name in SOURCES:
        head = (PRESETS / name).read_text().split('\nMODEL:')[0]
        assert ('wanggrun/triplet' if name.startswith('authors') else 'facebookresearch/moco') in head, name
        assert f'configs/detectron2/{name}' in head, name   # the run command names the file itself


def test_unknown_key_is_refused(tmp_path):
    "A preset with a key detectron2 does not know fails to load (so the value-for-value test cannot pass on a typo)."
    _skip_without_detectron2()
    from triplet_ssl.detectron2_runner import detectron2_config
    bad = tmp_path / 'bad.yaml'
    bad.write_text((PRESETS / 'authors_voc_R_50_C4.yaml').read_text().replace('  MAX_ITER: 180000', '  MAX_ITERS: 180000'))
    with pytest.raises(KeyError, match='MAX_ITERS'): detectron2_config(bad)
