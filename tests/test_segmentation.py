"""Instance segmentation: mask AP against pycocotools run on files, the torchvision fallback's Mask R-CNN, and detectron2's
Mask R-CNN C4 preset end to end on a synthetic COCO (box and mask AP from its COCOEvaluator)."""
import contextlib, io, json, math, time
import numpy as np
import pytest
import torch
from helpers import LOSS, run


def _uncompressed(mask):
    flat = mask.flatten(order='F'); change = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], change, [len(flat)]])).tolist()
    return dict(size=list(mask.shape), counts=counts if flat[0] == 0 else [0] + counts)


def _compressed(mask):
    from pycocotools import mask as M
    rle = M.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


def _blob(rng, h, w, lo=4, hi=30):
    "A random filled ellipse or rectangle mask."
    bh, bw = int(rng.integers(lo, min(hi, h))), int(rng.integers(lo, min(hi, w)))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    yy, xx = np.mgrid[:h, :w]
    if rng.random() < 0.5: m = ((yy - y - bh / 2) / (bh / 2)) ** 2 + ((xx - x - bw / 2) / (bw / 2)) ** 2 <= 1
    else: m = (yy >= y) & (yy < y + bh) & (xx >= x) & (xx < x + bw)
    return m.astype(np.uint8)


def test_segm_ap_equals_cocoeval_on_files(tmp_path):
    """40 random cases (polygons, compressed and uncompressed RLE, crowd regions, images of different sizes, non-contiguous
    ids): COCOeval(gt.json, results.json, 'segm') == detection_ap(iou_type='segm') on CocoDetection(masks=True), all 12 numbers."""
    from pycocotools import mask as M
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from triplet_ssl.detection_data import CocoDetection
    from triplet_ssl.detection_metrics import COCO_STATS, detection_ap
    rng, crowds, kinds, tested = np.random.default_rng(0), 0, set(), 0
    while tested < 40:
        cat_ids = sorted(rng.choice(np.arange(1, 90), int(rng.integers(1, 4)), replace=False).tolist())
        images, anns, results, truth = [], [], [], {}
        for k in range(int(rng.integers(1, 5))):
            image_id, h, w = int(rng.integers(1, 10 ** 6)), int(rng.integers(40, 120)), int(rng.integers(40, 120))
            if image_id in truth: continue
            images.append(dict(id=image_id, file_name=f'{image_id}.jpg', height=h, width=w)); truth[image_id] = []
            for _ in range(int(rng.integers(0, 5))):
                c, crowd = int(rng.choice(cat_ids)), bool(rng.random() < 0.15)
                if crowd: m = np.maximum(_blob(rng, h, w, 10, 40), _blob(rng, h, w, 3, 8)); seg = _uncompressed(m)
                elif rng.random() < 0.4:   # a polygon with float vertices: rasterised by pycocotools on both sides
                    x, y = rng.uniform(0, w - 12), rng.uniform(0, h - 12)
                    seg = [[x, y, x + rng.uniform(4, 30), y + rng.uniform(-3, 3), x + rng.uniform(4, 30), y + rng.uniform(4, 30), x + rng.uniform(-3, 3), y + rng.uniform(4, 30)]]
                    m = M.decode(M.merge(M.frPyObjects(seg, h, w)))
                else: m = _blob(rng, h, w); seg = _compressed(m)
                if m.sum() == 0: continue
                kinds.add('polygon' if isinstance(seg, list) else 'rle' if isinstance(seg['counts'], list) else 'compressed')
                rle = M.encode(np.asfortranarray(m))
                area = float(M.area(rle)) * (rng.uniform(0.5, 1.5) if rng.random() < 0.3 else 1.0)   # COCO's area field decides the range
                anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=c, iscrowd=int(crowd), segmentation=seg, area=area,
                                 bbox=[float(v) for v in M.toBbox(rle)]))
                truth[image_id].append((m, c)); crowds += crowd
            for m, c in truth[image_id]:   # detections near each object: shifted, grown, shrunk, a wrong class now and then
                for _ in range(int(rng.integers(0, 3))):
                    d = np.roll(m, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
                    if rng.random() < 0.3: d = np.maximum(d, _blob(rng, h, w, 3, 10))
                    results.append((image_id, c if rng.random() < 0.85 else int(rng.choice(cat_ids)), d))
            for _ in range(int(rng.integers(0, 3))): results.append((image_id, int(rng.choice(cat_ids)), _blob(rng, h, w)))
        results = [r for r in results if r[2].sum() > 0]
        if not results: continue
        scores = rng.random(len(results))
        (tmp_path / 'gt.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=[dict(id=c, name=f'c{c}') for c in cat_ids])))
        (tmp_path / 'dt.json').write_text(json.dumps([dict(image_id=i, category_id=c, segmentation=_compressed(d), score=float(s))
                                                      for (i, c, d), s in zip(results, scores)]))
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(tmp_path / 'gt.json'))
            E = COCOeval(gt, gt.loadRes(str(tmp_path / 'dt.json')), 'segm'); E.evaluate(); E.accumulate(); E.summarize()
        ds = CocoDetection(tmp_path, tmp_path / 'gt.json', masks=True)
        label = {c: k + 1 for k, c in enumerate(cat_ids)}
        preds = []
        for im in ds.images:
            mine = [(c, d, s) for (i, c, d), s in zip(results, scores) if i == im['id']]
            preds.append(dict(boxes=torch.zeros(len(mine), 4), scores=torch.tensor([s for _, _, s in mine]), labels=torch.tensor([label[c] for c, _, _ in mine]),
                              masks=torch.from_numpy(np.stack([d for _, d, _ in mine])) if mine else torch.zeros(0, im['height'], im['width'])))
        ours = detection_ap(preds, [ds.target(i) for i in range(len(ds))], len(cat_ids), iou_type='segm')
        ref = [float(v * 100) if v >= 0 else float('nan') for v in E.stats]
        np.testing.assert_array_equal([ours[k] for k in COCO_STATS], ref, err_msg=f'case {tested}')
        tested += 1
    assert crowds >= 10 and kinds == {'polygon', 'rle', 'compressed'}


@pytest.mark.slow   # a few CPU training steps (the fast tier: make test-fast)
def test_mask_rcnn_fallback_trains_on_synthetic_coco(tmp_path):
    """torchvision's Mask R-CNN on our backbone (build_detector(masks=True)) fine-tunes on write_synthetic_coco (crowds left
    out of training), and evaluate_detector gives finite box and mask AP (iou_type='segm')."""
    from triplet_ssl.detection import build_detector, evaluate_detector, finetune_detector
    from triplet_ssl.detection_data import CocoDetection, write_synthetic_coco
    torch.set_num_threads(2)
    root = write_synthetic_coco(tmp_path / 'coco', dict(train2017=16, val2017=6), size=64, seed=1)
    train = CocoDetection(root / 'train2017', root / 'annotations' / 'instances_train2017.json', masks=True)
    val = CocoDetection(root / 'val2017', root / 'annotations' / 'instances_val2017.json', masks=True)
    torch.manual_seed(0)
    model = build_detector('resnet18', num_classes=2, norm='bn', min_size=64, max_size=64, fpn_channels=32, anchor_sizes=(8, 16, 32, 64, 128),
                           representation_size=64, masks=True, mask_channels=32, rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                           rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20, box_batch_size_per_image=16, box_score_thresh=0.0)
    assert type(model).__name__ == 'MaskRCNN'
    losses = finetune_detector(model, train, steps=6, lr=0.01, batch_size=4, warmup=2, progress=False)
    assert all(math.isfinite(l) for l in losses)
    box, segm = evaluate_detector(model, val, 2), evaluate_detector(model, val, 2, iou_type='segm')
    print(f"Mask R-CNN fallback after 6 steps: box AP {box['AP']:.2f}, mask AP {segm['AP']:.2f}")
    assert math.isfinite(box['AP']) and math.isfinite(segm['AP'])


D2_COCO_CPU_SMOKE = [   # the authors' COCO Mask R-CNN protocol, shrunk to a CPU smoke run: BN, 64-pixel images, few proposals
    'MODEL.DEVICE', 'cpu', 'MODEL.RESNETS.NORM', 'BN', 'TEST.PRECISE_BN.ENABLED', 'False',
    'INPUT.MIN_SIZE_TRAIN', '(64,)', 'INPUT.MAX_SIZE_TRAIN', '64', 'INPUT.MIN_SIZE_TEST', '64', 'INPUT.MAX_SIZE_TEST', '64',
    'MODEL.RPN.PRE_NMS_TOPK_TRAIN', '200', 'MODEL.RPN.POST_NMS_TOPK_TRAIN', '32', 'MODEL.RPN.PRE_NMS_TOPK_TEST', '100',
    'MODEL.RPN.POST_NMS_TOPK_TEST', '16', 'MODEL.RPN.BATCH_SIZE_PER_IMAGE', '32', 'MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE', '16',
    'MODEL.ROI_HEADS.SCORE_THRESH_TEST', '0.0', 'TEST.DETECTIONS_PER_IMAGE', '20',
    'SOLVER.IMS_PER_BATCH', '2', 'SOLVER.BASE_LR', '0.0001', 'SEED', '0', 'SOLVER.WARMUP_ITERS', '1', 'SOLVER.MAX_ITER', '2',
    'SOLVER.CHECKPOINT_PERIOD', '100000', 'DATALOADER.NUM_WORKERS', '0']


@pytest.mark.slow   # export + detectron2 train and evaluate in subprocesses
def test_detectron2_coco_mask_rcnn_end_to_end(tmp_path):
    """export -> `python -m triplet_ssl.detectron2_runner train configs/detectron2/authors_coco_R_50_C4_2x.yaml` on a synthetic
    COCO 2017 (COCO's 80 categories, polygons, RLE and crowds) -> detectron2's COCOEvaluator: finite bbox and segm AP rows."""
    from triplet_ssl.detectron2_runner import DETECTRON2_MISSING, detectron2_available
    if not detectron2_available(): pytest.skip(DETECTRON2_MISSING)
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
    from triplet_ssl.detection_data import write_synthetic_coco
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.runs import save_checkpoint
    torch.manual_seed(0)
    save_checkpoint(tmp_path / 'ckpt.pt', model=TripletSSL(build_backbone('resnet50'), 64, 16, 64, **LOSS).state_dict(), config=dict(arch='resnet50'), epoch=1, step=1)
    r = run('-m', 'triplet_ssl.detectron2_runner', 'export', str(tmp_path / 'ckpt.pt'), str(tmp_path / 'r50.pkl'))
    assert r.returncode == 0, r.stderr[-3000:]
    cats = [dict(id=c['id'], name=c['name'], supercategory='thing') for c in COCO_CATEGORIES if c['isthing']]
    write_synthetic_coco(tmp_path / 'datasets' / 'coco', dict(train2017=6, val2017=4), size=64, crowd=0.5, categories=cats)
    t0 = time.time()
    r = run('-m', 'triplet_ssl.detectron2_runner', 'train', 'configs/detectron2/authors_coco_R_50_C4_2x.yaml', str(tmp_path / 'r50.pkl'),
            '--datasets', str(tmp_path / 'datasets'), '--output', str(tmp_path / 'out'), *D2_COCO_CPU_SMOKE)
    print(f"detectron2 Mask R-CNN train + eval: {time.time() - t0:.0f}s")
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-5000:]
    assert 'Following weights matched with submodule model - Total num: 53' in log and 'Evaluation results for segm' in log
    metrics = [json.loads(l) for l in (tmp_path / 'out' / 'metrics.json').read_text().splitlines()]
    ap = [m for m in metrics if 'segm/AP' in m][-1]
    print({k: v for k, v in ap.items() if k.startswith(('bbox/AP', 'segm/AP'))})
    for kind in ('bbox', 'segm'):
        assert all(math.isfinite(ap[f'{kind}/{k}']) for k in ('AP', 'AP50', 'AP75')), (kind, ap)
