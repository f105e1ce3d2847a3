"""Detection transfer end to end: the export CLI, and Faster R-CNN fine-tuned on a synthetic VOC-format dataset."""
import pickle, time
from pathlib import Path
import numpy as np
import torch
from helpers import LOSS, run


def test_export_cli_round_trip(tmp_path):
    from triplet_ssl.interop import detectron2_to_torchvision
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.runs import save_checkpoint
    model = TripletSSL(build_backbone('resnet50'), 64, 16, 64, **LOSS)
    save_checkpoint(tmp_path / 'ckpt.pt', model=model.state_dict(), config=dict(arch='resnet50'), epoch=1, step=10)
    r = run('-m', 'triplet_ssl.detectron2_runner', 'export', str(tmp_path / 'ckpt.pt'), str(tmp_path / 'r50.pkl'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'wrote' in r.stdout and '265 tensors' in r.stdout
    with open(tmp_path / 'r50.pkl', 'rb') as f: raw = pickle.load(f)
    assert raw['__author__'] == 'triplet-ssl' and raw['matching_heuristics'] is True
    assert raw['model']['res5.2.conv3.norm.running_var'].shape == (2048,)
    back = detectron2_to_torchvision(raw)
    for k, v in model.backbone.state_dict().items():
        if not k.endswith('num_batches_tracked'): assert torch.equal(back[k], v), k


def test_export_cli_errors_are_clear(tmp_path):
    r = run('-m', 'triplet_ssl.detectron2_runner', 'export', str(tmp_path / 'missing.pt'), str(tmp_path / 'x.pkl'))
    assert r.returncode != 0 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_faster_rcnn_learns_synthetic_voc(tmp_path):
    """A few hundred CPU steps of a ResNet-18 Faster R-CNN (FPN, from scratch) on rectangles vs ellipses reach a clear AP50,
    by COCOeval and by the VOC devkit's rule; with detectron2 installed, its VOC evaluator gives our VOC07 numbers on the
    same predictions."""
    from triplet_ssl.detection import build_detector, evaluate_detector, finetune_detector, predict
    from triplet_ssl.detection_data import SHAPES, VOCDetection, write_synthetic_voc
    from triplet_ssl.detection_metrics import detection_ap
    from triplet_ssl.detectron2_runner import detectron2_available
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
    losses = finetune_detector(model, train, steps=200, lr=0.02, batch_size=8, warmup=20, log_every=25)
    preds, targets = predict(model, test)
    result, voc = detection_ap(preds, targets, 2), detection_ap(preds, targets, 2, method='voc07')
    print(f"untrained AP50 {untrained['AP50']:.1f} -> trained {result} in {time.time() - t0:.0f}s; VOC07 {voc}")
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert result["AP50"] > 30 and result["AP"] > 10 and untrained['AP50'] < 5
    assert result['AP50'] >= result['AP75'] and result['AP50'] >= result['AP']
    assert voc['AP50'] > 30 and voc['AP50'] >= voc['AP75']
    if detectron2_available():
        same = _as_devkit_reads_them(preds)
        ours, theirs = detection_ap(same, targets, 2, method='voc07'), _detectron2_voc07(root, 'test', SHAPES, same, 'synthetic_voc_torchvision')
        print(f"VOC07 of the torchvision model, ours {ours} vs detectron2's evaluator {theirs}")
        for k in ('AP', 'AP50', 'AP75'): assert abs(ours[k] - theirs[k]) < 1e-9, (k, ours[k], theirs[k])


# ---------------------------------------------------------------------------------------------------------------------
# AP against the reference tools: pycocotools run on files as a user runs it, and the VOC devkit's rule written out
# below from its description (voc_eval.m / detectron2's voc_eval), on random cases with crowds and difficult objects.

def _random_scene(rng, n_images, n_classes, crowd=0.0, difficult=0.0, grid=1.0, size=200):
    "Per image: ground truth (boxes x1 y1 x2 y2, labels 1..C, crowd/difficult flags) and detections near and off it."
    def box(lo=8, hi=80):
        w, h = rng.integers(lo, hi, 2) * grid
        x, y = rng.integers(0, int((size - w) / grid)) * grid, rng.integers(0, int((size - h) / grid)) * grid
        return [x, y, x + w, y + h]
    scenes = []
    for _ in range(n_images):
        n = int(rng.integers(0, 6))
        gt = [box() for _ in range(n)]
        flag = [bool(rng.random() < max(crowd, difficult)) for _ in range(n)]
        gt = [box(60, 150) if f and crowd else b for b, f in zip(gt, flag)]      # crowd regions are large
        labels = [int(rng.integers(1, n_classes + 1)) for _ in range(n)]
        for k in range(n):   # objects of the same class overlapping one another, where matching rules differ
            if rng.random() < 0.5:
                dx, dy = rng.integers(1, 8, 2) * grid
                gt.append([gt[k][0] + dx, gt[k][1] + dy, gt[k][2] + dx, gt[k][3] + dy]); labels.append(labels[k])
                flag.append(bool(rng.random() < difficult))
        det, det_labels = [], []
        for b, l in zip(gt, labels):
            for _ in range(int(rng.integers(0, 4))):   # 0-3 detections near each box (duplicates, loose ones, inside crowds)
                j = rng.integers(-6, 7, 4) * grid
                det.append([b[0] + j[0], b[1] + j[1], max(b[2] + j[2], b[0] + j[0] + grid), max(b[3] + j[3], b[1] + j[1] + grid)])
                det_labels.append(l if rng.random() < 0.85 else int(rng.integers(1, n_classes + 1)))
        for _ in range(int(rng.integers(0, 4))): det.append(box()); det_labels.append(int(rng.integers(1, n_classes + 1)))
        scenes.append(dict(gt=gt, labels=labels, flag=flag, det=det, det_labels=det_labels, scores=rng.random(len(det)).tolist()))
    return scenes


def test_coco_ap_equals_pycocotools_on_files(tmp_path):
    "40 random cases with crowd regions, uneven areas and non-contiguous ids: COCOeval on json files == detection_ap via CocoDetection."
    import contextlib, io, json
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from triplet_ssl.detection_data import CocoDetection
    from triplet_ssl.detection_metrics import COCO_STATS, detection_ap
    rng, checked_crowd = np.random.default_rng(0), 0
    for case in range(40):
        cat_ids = sorted(rng.choice(np.arange(1, 90), int(rng.integers(1, 4)), replace=False).tolist())
        scenes = _random_scene(rng, int(rng.integers(1, 5)), len(cat_ids), crowd=0.25, grid=0.25, size=640)
        image_ids = sorted(rng.choice(np.arange(1, 10**6), len(scenes), replace=False).tolist())
        images, anns, results = [], [], []
        for im, s in zip(image_ids, scenes):
            images.append(dict(id=im, file_name=f'{im}.jpg', width=640, height=640))
            for b, l, c in zip(s['gt'], s['labels'], s['flag']):
                w, h = b[2] - b[0], b[3] - b[1]
                anns.append(dict(id=len(anns) + 1, image_id=im, category_id=cat_ids[l - 1], iscrowd=int(c), bbox=[b[0], b[1], w, h],
                                 area=float(w * h * rng.uniform(0.3, 1.0))))   # a mask's area is below its box's
            results += [dict(image_id=im, category_id=cat_ids[l - 1], bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]], score=sc)
                        for b, l, sc in zip(s['det'], s['det_labels'], s['scores'])]
        checked_crowd += any(a['iscrowd'] for a in anns)
        (tmp_path / 'gt.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=[dict(id=c, name=f'c{c}') for c in cat_ids])))
        (tmp_path / 'dt.json').write_text(json.dumps(results))
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(tmp_path / 'gt.json'))
            if not results: continue   # loadRes refuses an empty list; covered by the notebook's no-detection case
            E = COCOeval(gt, gt.loadRes(str(tmp_path / 'dt.json')), 'bbox'); E.evaluate(); E.accumulate(); E.summarize()
        targets = CocoDetection(tmp_path, tmp_path / 'gt.json').targets
        by_id = {t['image_id']: k for k, t in enumerate(targets)}
        preds = [None] * len(targets)
        for im, s in zip(image_ids, scenes):
            preds[by_id[im]] = dict(boxes=torch.tensor(s['det']).reshape(-1, 4), scores=torch.tensor(s['scores']), labels=torch.tensor(s['det_labels']))
        ours = detection_ap(preds, targets, len(cat_ids))
        ref = [float(v * 100) if v >= 0 else float('nan') for v in E.stats]
        np.testing.assert_array_equal([ours[k] for k in COCO_STATS], ref, err_msg=f'case {case}')
    assert checked_crowd >= 20


def _devkit_voc07(det_lines, gt, classname, ovthresh, use_07_metric=True):
    """The VOC devkit's AP for one class, written from its description. `det_lines`: (image, score, xmin, ymin, xmax, ymax)
    with 1-based boxes as the devkit's detection files hold them; `gt[image]`: list of (name, difficult, (xmin, ymin, xmax, ymax))
    with the annotation's integers. Areas are in pixels: width = xmax - xmin + 1."""
    recs = {im: dict(bbox=np.array([o[2] for o in objs if o[0] == classname], dtype=float).reshape(-1, 4),
                     difficult=np.array([o[1] for o in objs if o[0] == classname], dtype=bool))
            for im, objs in gt.items()}
    for r in recs.values(): r['det'] = [False] * len(r['bbox'])
    npos = sum(int((~r['difficult']).sum()) for r in recs.values())
    conf = np.array([d[1] for d in det_lines]); order = np.argsort(-conf)
    tp, fp = np.zeros(len(det_lines)), np.zeros(len(det_lines))
    for d, k in enumerate(order):
        im, bb = det_lines[k][0], np.array(det_lines[k][2:], dtype=float)
        R, ovmax = recs[im], -np.inf
        if R['bbox'].size > 0:
            G = R['bbox']
            iw = np.maximum(np.minimum(G[:, 2], bb[2]) - np.maximum(G[:, 0], bb[0]) + 1.0, 0.0)
            ih = np.maximum(np.minimum(G[:, 3], bb[3]) - np.maximum(G[:, 1], bb[1]) + 1.0, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (G[:, 2] - G[:, 0] + 1.0) * (G[:, 3] - G[:, 1] + 1.0) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R['difficult'][jmax]:
                if not R['det'][jmax]: tp[d] = 1.0; R['det'][jmax] = True
                else: fp[d] = 1.0
        else: fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos); prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec, mpre = np.concatenate(([0.0], rec, [1.0])), np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1): mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _devkit_map(scenes, n_classes, use_07_metric=True):
    "AP, AP50, AP75 as detectron2 reports the devkit's numbers: mean over classes, then over IoU 0.50:0.05:0.95."
    names = [f'c{c}' for c in range(1, n_classes + 1)]
    gt = {k: [(names[l - 1], f, (int(b[0]) + 1, int(b[1]) + 1, int(b[2]), int(b[3]))) for b, l, f in zip(s['gt'], s['labels'], s['flag'])]
          for k, s in enumerate(scenes)}
    aps = {}
    for thresh in range(50, 100, 5):
        per_class = []
        for c, name in enumerate(names, 1):
            lines = [(k, sc, b[0] + 1, b[1] + 1, b[2], b[3]) for k, s in enumerate(scenes)
                     for b, l, sc in zip(s['det'], s['det_labels'], s['scores']) if l == c]
            per_class.append(_devkit_voc07(lines, gt, name, thresh / 100.0, use_07_metric) * 100)
        aps[thresh] = np.mean(per_class)
    return dict(AP=np.mean(list(aps.values())), AP50=aps[50], AP75=aps[75])


def test_voc07_equals_devkit_rule_on_random_cases():
    "60 random cases with difficult objects and overlapping boxes: detection_ap(method='voc07' and 'area') == the devkit's rule."
    from triplet_ssl.detection_metrics import detection_ap
    rng, tested = np.random.default_rng(1), 0
    while tested < 60:
        n_classes = int(rng.integers(1, 4))
        scenes = _random_scene(rng, int(rng.integers(1, 6)), n_classes, difficult=0.25, grid=0.5)
        present = {l for s in scenes for l, f in zip(s['labels'], s['flag']) if not f}
        if len(present) < n_classes: continue   # the devkit's AP of a class without countable boxes is undefined (0/0)
        # ground truth as VOC annotations hold it: integers, 1-based (our boxes: xmin - 1, ymin - 1, xmax, ymax)
        for s in scenes: s['gt'] = [[float(int(v)) for v in b] for b in s['gt']]
        targets = [dict(boxes=torch.tensor(s['gt'], dtype=torch.float64).reshape(-1, 4), labels=torch.tensor(s['labels'], dtype=torch.int64),
                        ignore=torch.tensor(s['flag'], dtype=torch.bool)) for s in scenes]
        preds = [dict(boxes=torch.tensor(s['det'], dtype=torch.float64).reshape(-1, 4), scores=torch.tensor(s['scores'], dtype=torch.float64),
                      labels=torch.tensor(s['det_labels'], dtype=torch.int64)) for s in scenes]
        for method, use_07 in (('voc07', True), ('area', False)):
            ours, ref = detection_ap(preds, targets, n_classes, method=method), _devkit_map(scenes, n_classes, use_07)
            for k in ('AP', 'AP50', 'AP75'): assert abs(ours[k] - ref[k]) < 1e-9, (tested, method, k, ours[k], ref[k])
        tested += 1


def _skip_without_detectron2():
    import pytest
    from triplet_ssl.detectron2_runner import DETECTRON2_MISSING, detectron2_available
    if not detectron2_available(): pytest.skip(DETECTRON2_MISSING)


def _detectron2_voc07(root, split, classes, preds, name):
    "detectron2's PascalVOCDetectionEvaluator (VOC2007 metric) on `preds` (one dict per image of the split, our labels 1..C)."
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_pascal_voc
    from detectron2.evaluation import PascalVOCDetectionEvaluator
    from detectron2.structures import Boxes, Instances
    register_pascal_voc(name, str(root), split, 2007, list(classes))
    ids = (Path(root) / 'ImageSets' / 'Main' / f'{split}.txt').read_text().split()
    ev = PascalVOCDetectionEvaluator(name); ev.reset()
    for image_id, p in zip(ids, preds):
        inst = Instances((64, 64), pred_boxes=Boxes(torch.as_tensor(p['boxes'], dtype=torch.float32).reshape(-1, 4)),
                         scores=torch.as_tensor(p['scores'], dtype=torch.float32), pred_classes=torch.as_tensor(p['labels']) - 1)
        ev.process([dict(image_id=image_id)], [dict(instances=inst)])
    out = ev.evaluate()['bbox']
    DatasetCatalog.remove(name); MetadataCatalog.remove(name)
    return out


def _as_devkit_reads_them(preds):
    """Predictions as the devkit will read them back from detectron2's files: boxes on a 0.5 grid (exact in binary and in
    '%.1f'), scores rounded to 3 decimals, and per class no two equal scores (the devkit's sort does not say how it breaks ties)."""
    out = []
    for p in preds:
        boxes, scores = torch.round(torch.as_tensor(p['boxes'], dtype=torch.float64) * 2) / 2, torch.round(torch.as_tensor(p['scores'], dtype=torch.float64) * 1000) / 1000
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out.append(dict(boxes=boxes[keep], scores=scores[keep], labels=torch.as_tensor(p['labels'])[keep]))
    seen = set()
    for p in out:
        keep = []
        for s, l in zip(p['scores'].tolist(), p['labels'].tolist()): keep.append((l, s) not in seen); seen.add((l, s))
        keep = torch.tensor(keep, dtype=torch.bool)
        p.update(boxes=p['boxes'][keep], scores=p['scores'][keep], labels=p['labels'][keep])
    return out


def test_voc07_equals_detectron2_evaluator_on_random_predictions(tmp_path):
    "Random predictions (near and off the boxes, a quarter of the objects difficult): our VOC07 AP/AP50/AP75 == detectron2's."
    _skip_without_detectron2()
    from triplet_ssl.detection_data import SHAPES, VOCDetection, write_synthetic_voc
    from triplet_ssl.detection_metrics import detection_ap
    root = write_synthetic_voc(tmp_path / 'voc', n_train=0, n_test=24, max_objects=3, difficult=0.25, seed=3)
    targets, rng = VOCDetection(root, 'test', SHAPES).targets, np.random.default_rng(0)
    preds = []
    for t in targets:
        near = t['boxes'].repeat(3, 1) + torch.as_tensor(rng.integers(-8, 9, (3 * len(t['boxes']), 4)) / 2)
        off = torch.as_tensor(rng.integers(0, 48, (2, 2)), dtype=torch.float64).repeat(1, 2) + torch.tensor([0., 0., 12., 12.])
        boxes = torch.cat([near, off])
        preds.append(dict(boxes=boxes, scores=torch.as_tensor(rng.random(len(boxes))), labels=torch.as_tensor(rng.integers(1, 3, len(boxes)))))
    preds = _as_devkit_reads_them(preds)
    ours, theirs = detection_ap(preds, targets, 2, method='voc07'), _detectron2_voc07(root, 'test', SHAPES, preds, 'synthetic_voc_random')
    for k in ('AP', 'AP50', 'AP75'): assert abs(ours[k] - theirs[k]) < 1e-9, (k, ours[k], theirs[k])
    assert 0 < ours['AP'] < ours['AP50'] < 100


D2_CPU_SMOKE = [   # the authors' VOC protocol, shrunk to a CPU smoke run: BN (SyncBN needs GPUs), 64-pixel images, few proposals
    'MODEL.DEVICE', 'cpu', 'MODEL.RESNETS.NORM', 'BN', 'TEST.PRECISE_BN.ENABLED', 'False',
    'DATASETS.TRAIN', "('voc_2007_trainval',)", 'DATASETS.TEST', "('voc_2007_test',)",
    'INPUT.MIN_SIZE_TRAIN', '(64,)', 'INPUT.MAX_SIZE_TRAIN', '64', 'INPUT.MIN_SIZE_TEST', '64', 'INPUT.MAX_SIZE_TEST', '64',
    'MODEL.RPN.PRE_NMS_TOPK_TRAIN', '200', 'MODEL.RPN.POST_NMS_TOPK_TRAIN', '32', 'MODEL.RPN.PRE_NMS_TOPK_TEST', '100',
    'MODEL.RPN.POST_NMS_TOPK_TEST', '16', 'MODEL.RPN.BATCH_SIZE_PER_IMAGE', '32', 'MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE', '16',
    'MODEL.ROI_HEADS.SCORE_THRESH_TEST', '0.0', 'TEST.DETECTIONS_PER_IMAGE', '20',
    'SOLVER.IMS_PER_BATCH', '2', 'SOLVER.BASE_LR', '0.0001', 'SEED', '0', 'SOLVER.WARMUP_ITERS', '1', 'SOLVER.STEPS', '(2,)', 'SOLVER.MAX_ITER', '3',
    'SOLVER.CHECKPOINT_PERIOD', '100000', 'DATALOADER.NUM_WORKERS', '0']


def test_detectron2_train_cli_end_to_end(tmp_path):
    """export -> `python -m triplet_ssl.detectron2_runner train configs/detectron2/authors_voc_R_50_C4.yaml` on a synthetic VOC2007 (VOC
    class names, full devkit XML) -> detectron2's VOC evaluator: AP rows exist and are finite, and every backbone (and res5)
    parameter of the trained model comes from our export, not from detectron2's random initialisation."""
    _skip_without_detectron2()
    import json, math
    from triplet_ssl.detection_data import VOC_CLASSES, write_synthetic_voc
    from triplet_ssl.interop import load_detectron2_pkl
    from triplet_ssl.models import TripletSSL, build_backbone
    from triplet_ssl.runs import save_checkpoint
    torch.manual_seed(0)
    net = build_backbone('resnet50')
    with torch.no_grad():   # BN values unlike any fresh initialisation (weight 1, bias 0, mean 0, var 1), so loading shows
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.1, 0.1); m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5)
    save_checkpoint(tmp_path / 'ckpt.pt', model=TripletSSL(net, 64, 16, 64, **LOSS).state_dict(), config=dict(arch='resnet50'), epoch=1, step=1)
    r = run('-m', 'triplet_ssl.detectron2_runner', 'export', str(tmp_path / 'ckpt.pt'), str(tmp_path / 'r50.pkl'))
    assert r.returncode == 0, r.stderr[-3000:]
    write_synthetic_voc(tmp_path / 'datasets' / 'VOC2007', n_train=8, n_test=8, max_objects=3, classes=VOC_CLASSES, difficult=0.2)
    t0 = time.time()
    r = run('-m', 'triplet_ssl.detectron2_runner', 'train', 'configs/detectron2/authors_voc_R_50_C4.yaml', str(tmp_path / 'r50.pkl'),
            '--datasets', str(tmp_path / 'datasets'), '--output', str(tmp_path / 'out'), *D2_CPU_SMOKE)
    print(f"detectron2 train + eval: {time.time() - t0:.0f}s")
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    log = r.stdout + r.stderr
    assert 'Following weights matched with submodule model - Total num: 53' in log and 'Evaluating voc_2007_test using 2007 metric' in log
    metrics = [json.loads(l) for l in (tmp_path / 'out' / 'metrics.json').read_text().splitlines()]
    ap = [m for m in metrics if 'bbox/AP50' in m][-1]
    print({k: v for k, v in ap.items() if k.startswith('bbox/')})
    assert all(math.isfinite(ap[f'bbox/{k}']) for k in ('AP', 'AP50', 'AP75'))
    final = torch.load(tmp_path / 'out' / 'model_final.pth', map_location='cpu', weights_only=True)['model']
    exported = load_detectron2_pkl(tmp_path / 'r50.pkl')
    where = lambda k: ('roi_heads.' if k.startswith('res5') else 'backbone.') + k
    ours = {k for k in final if (k.startswith('backbone.') or k.startswith('roi_heads.res5.')) and not k.endswith('num_batches_tracked')}
    assert ours - {where(k) for k in exported} == {f'roi_heads.res5.norm.{a}' for a in ('weight', 'bias', 'running_mean', 'running_var')}
    # 3 steps at lr 1e-4 moved the weights by at most 0.8% of their norm (measured); one left at detectron2's initialisation would be off by
    # ~1.4 (a conv: another random draw), 0.28 (a BN weight: 1 instead of U(0.5, 1.5)) or 1.0 (a BN bias: 0 instead of U(-0.1, 0.1)).
    # Running statistics are left out: training BN moves them by design.
    drift = {k: float((final[where(k)] - torch.as_tensor(v)).norm() / torch.as_tensor(v).norm()) for k, v in exported.items() if k.endswith(('weight', 'bias'))}
    print(f"largest relative drift from the export: {max(drift.values()):.2e} ({max(drift, key=drift.get)})")
    assert max(drift.values()) < 0.1, max(drift.items(), key=lambda kv: kv[1])


def _synthetic_voc2007(tmp_path):
    from triplet_ssl.detection_data import VOC_CLASSES, VOCDetection, write_synthetic_voc
    root = write_synthetic_voc(tmp_path / 'VOCdevkit' / 'VOC2007', n_train=6, n_test=6, max_objects=3, classes=VOC_CLASSES, difficult=0.3, seed=5)
    return root, VOCDetection(root, 'test')


def test_synthetic_voc_is_read_by_torchvision(tmp_path):
    "torchvision's VOCDetection reads write_synthetic_voc's folder and finds the objects our reader finds, with every devkit field."
    import torchvision
    from triplet_ssl.detection_data import VOC_CLASSES
    root, ours = _synthetic_voc2007(tmp_path)
    tv = torchvision.datasets.VOCDetection(str(tmp_path), year='2007', image_set='test', download=False)
    assert len(tv) == len(ours) == 6
    for k in range(len(tv)):
        image, ann = tv[k]
        assert image.size == (64, 64) and ann['annotation']['size'] == dict(width='64', height='64', depth='3')
        objs = ann['annotation']['object']
        assert all({'name', 'pose', 'truncated', 'difficult', 'bndbox'} <= set(o) for o in objs)
        boxes = [[float(o['bndbox'][c]) - (1 if c in ('xmin', 'ymin') else 0) for c in ('xmin', 'ymin', 'xmax', 'ymax')] for o in objs]
        assert boxes == ours.targets[k]['boxes'].tolist()
        assert [VOC_CLASSES.index(o['name']) + 1 for o in objs] == ours.targets[k]['labels'].tolist()
        assert [o['difficult'] == '1' for o in objs] == ours.targets[k]['ignore'].tolist()


def test_synthetic_voc_is_read_by_detectron2(tmp_path):
    "detectron2's VOC loader and its evaluator's annotation parser (which needs pose and truncated) read the same objects."
    _skip_without_detectron2()
    from detectron2.data.datasets.pascal_voc import load_voc_instances
    from detectron2.evaluation.pascal_voc_evaluation import parse_rec
    from triplet_ssl.detection_data import VOC_CLASSES
    root, ours = _synthetic_voc2007(tmp_path)
    dicts = load_voc_instances(str(root), 'test', VOC_CLASSES)
    assert [d['image_id'] for d in dicts] == ours.ids
    for d, t, image_id in zip(dicts, ours.targets, ours.ids):
        assert (d['height'], d['width']) == (64, 64)
        assert [a['bbox'] for a in d['annotations']] == t['boxes'].tolist()
        assert [a['category_id'] + 1 for a in d['annotations']] == t['labels'].tolist()
        rec = parse_rec(str(root / 'Annotations' / f'{image_id}.xml'))
        assert [bool(o['difficult']) for o in rec] == t['ignore'].tolist() and all(o['pose'] == 'Unspecified' and o['truncated'] == 0 for o in rec)
