"""Validate the GPU path in one command (about 8 minutes on one GPU); prints a table (and JSON with --out).

    python bench/gpu_check.py [--out gpu_check.json]   # on a machine with CUDA GPUs
    python bench/gpu_check.py --quick                 # the same code paths, tiny, on the CPU (run by the tests)

Every training part drives the trainer's own step (`Pretraining.train_step` / `_forward_backward` of triplet_ssl.train, on a
`Pretraining` built without data: the trainer's model, optimizer, scaler and autocast dtype), as a GPU runs it: the loss is
not read back between log steps (`defer_sync`). Parts, each isolated (an exception is recorded as that part's `error` and
the others still run):
- train/...: resnet50 with the paper's heads (projector 2048-4096-256, predictor 256-4096-256, EMA target, truncated
  triplet loss), LARS, at 224x224, in bf16 and in fp16 (with the gradient scaler), channels_last and torch.compile on and
  off, and with cudnn.benchmark: images/s, peak memory, achieved TFLOP/s and the fraction of the GPU's peak. The compiled
  row also counts torch.compile's graph breaks and compares the compiled network's loss with the eager one's.
- train/bf16/channels_last/multires: the multi-resolution trick (online views 96..224, target views 128..224).
- precision: bf16 and fp16 against fp32 on the same weights and batch: loss and gradient closeness (cosine, relative norm).
- nan_stops: a NaN reaching the loss still stops the run (noted on the device, raised at the next finiteness check).
- pipeline/...: the input pipeline on synthetic ImageNet-like JPEGs (500x375): the BYOL augmentation in CPU workers vs
  `device_augment`; and the CPU workers feeding the trainer's steps for 50 batches (the share of time spent waiting).
- ddp/2_ranks: two processes in a real NCCL group through torchrun and the trainer, with SyncBN (skipped, saying so, on one GPU).
- ddp: a one-process NCCL group (gloo with --quick), the model with SyncBN in DDP: steps, an all-reduce, the gather helpers.
- knn: the weighted kNN (`knn_predict`) on the GPU against a 100k x 2048 bank; predictions checked against the CPU.
- flops: FLOPs per image of one training step (torch.utils.flop_counter.FlopCounterMode), 2 FLOPs per multiply-add.

Reading the table: `img/s` of the train rows is the GPU's training throughput per process (the paper's recipe runs 196
images per GPU per micro-batch); `% peak` is achieved TFLOP/s over the dense bf16/fp16 peak of the GPU (a known name,
or --peak_tflops); 30-50% is typical for a ResNet-50 step. A pipeline row below the best train row's img/s means the
GPU would wait for data with that many workers. `status` is ok, skipped or the error. Nothing is written unless --out.
"""
import argparse, json, math, os, platform, sys, tempfile, time, traceback
from pathlib import Path
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a clone without installing
from types import SimpleNamespace
from triplet_ssl.train import Config, Pretraining, build_model, autocast_dtype, multires_sizes
from triplet_ssl.optim import build_optimizer
from triplet_ssl.runs import StopRequest

# Dense (no sparsity) tensor-core peak TFLOP/s for bf16 / fp16 from the vendors' data sheets; first matching name wins.
PEAK_TFLOPS = [('H200', 989, 989), ('GH200', 989, 989), ('H100 PCIe', 756, 756), ('H100 NVL', 835, 835), ('H100', 989, 989),
               ('A100', 312, 312), ('L40S', 362, 362), ('L40', 181, 181), ('L4', 121, 121), ('V100', None, 125), ('T4', None, 65)]

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--quick', action='store_true', help='tiny model, images and steps on the CPU (gloo, bf16/fp16 on the CPU)')
p.add_argument('--out', default=None, help='write every number as JSON here (default: no file)')
p.add_argument('--batch_size', type=int, default=None, help='images per step (default 128; 16 with --quick)')
p.add_argument('--steps', type=int, default=None, help='timed steps per train row (default 15; 2 with --quick)')
p.add_argument('--workers', type=int, default=None, help='loader workers for the pipeline rows (default: min(8, CPUs); 1 with --quick)')
p.add_argument('--peak_tflops', type=float, default=None, help="the GPU's dense bf16 peak, if its name is not in the table")
p.add_argument('--skip', nargs='*', default=[], help='parts to leave out (prefixes: train/compile, pipeline, ddp, knn, ...)')
a = p.parse_args()

dev = torch.device('cpu' if a.quick or not torch.cuda.is_available() else 'cuda')
if dev.type == 'cpu' and not a.quick: sys.exit("No CUDA GPU visible: this check is for a GPU machine. Use --quick for the CPU dry run.")
Q = a.quick
ARCH, SIZE = ('narrow_resnet', 32) if Q else ('resnet50', 224)
HEADS = dict(proj_hidden=64, proj_dim=32, pred_hidden=64) if Q else dict(proj_hidden=4096, proj_dim=256, pred_hidden=4096)
B = a.batch_size or (16 if Q else 128)
STEPS = a.steps or (2 if Q else 15)
# --quick: dynamo's graph capture and AOTAutograd without inductor's C++ code generation (minutes on a small CPU)
COMPILE_BACKEND = 'aot_eager' if Q else 'inductor'
WORKERS = a.workers if a.workers is not None else (1 if Q else min(8, os.cpu_count() or 1))
gpu_name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu'
peak = {'bf16': a.peak_tflops, 'fp16': a.peak_tflops}
if a.peak_tflops is None and dev.type == 'cuda':
    for name, bf16, fp16 in PEAK_TFLOPS:
        if name in gpu_name: peak = {'bf16': bf16, 'fp16': fp16}; break
results = dict(meta=dict(device=str(dev), gpu=gpu_name, torch=torch.__version__, cuda=torch.version.cuda, quick=Q, arch=ARCH,
                         image_size=SIZE, batch_size=B, steps=STEPS, workers=WORKERS, compile_backend=COMPILE_BACKEND, peak_tflops=peak,
                         peak_source='--peak_tflops' if a.peak_tflops else ('table' if peak['bf16'] or peak['fp16'] else 'unknown')),
               parts={})


def sync():
    if dev.type == 'cuda': torch.cuda.synchronize()


def part(name):
    "Run the decorated function now as part `name`; its dict (or its error) goes into the results."
    def run(fn):
        if any(name.startswith(s) for s in a.skip): results['parts'][name] = dict(skipped=True); return fn
        t0 = time.time()
        if dev.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        try: res = fn() or {}
        except Exception as e:
            res = dict(error=f'{type(e).__name__}: {e}'[:500], traceback=traceback.format_exc()[-3000:])
        res['seconds'] = round(time.time() - t0, 2)
        results['parts'][name] = res
        status = 'ERROR ' + res['error'] if 'error' in res else 'skipped: ' + res.get('reason', '') if res.get('skipped') else 'ok'
        print(f"  {name}: {status} ({res['seconds']:.1f} s)", flush=True)
        return fn
    return run


def config(**kw):
    sizes = dict(online_sizes=(16, 32), target_sizes=(24, 32)) if Q else {}   # the paper's 96..224 / 128..224 otherwise
    return Config(**{**dict(dataset='imagenet', arch=ARCH, batch_size=B, optimizer='lars', lr=4.8, weight_decay=1e-6, **HEADS, **sizes), **kw})


def views(channels_last=False, n=B, size=SIZE):
    g = torch.Generator().manual_seed(0)
    v = [torch.randn(n, 3, size, size, generator=g).to(dev) for _ in range(2)]
    return [x.contiguous(memory_format=torch.channels_last) for x in v] if channels_last else v


def trainer(cfg, net=None):
    """A `Pretraining` without data or run folder: the trainer's model (SyncBN with cfg.sync_bn), optimizer, scaler and
    autocast dtype as it builds them, so that its own `train_step` / `_forward_backward` run here (`net`: e.g. the model in DDP)."""
    from triplet_ssl.distributed import convert_sync_batchnorm
    torch.manual_seed(0)
    run = Pretraining.__new__(Pretraining)
    model = build_model(cfg, 3)
    if cfg.sync_bn: model = convert_sync_batchnorm(model, dev)
    run.model = model.to(dev, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
    run.cfg, run.device, run.rank, run.world, run.main, run.probe = cfg, dev, 0, 1, True, None
    run.opt = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.sgd_momentum, cfg.weight_decay)
    run.scaler = torch.amp.GradScaler(dev.type, enabled=cfg.precision == 'fp16')
    run.dtype, run.param_dtype = autocast_dtype(cfg.precision, dev), torch.float32
    run.net = net(run.model) if net else run.model
    run.forward = torch.compile(run.net, backend=COMPILE_BACKEND) if cfg.compile else run.net
    run.step, run.lr, run.momentum = 0, 0.0, cfg.base_momentum
    run.defer_sync, run._nonfinite_step = True, torch.zeros((), dtype=torch.long, device=dev)   # as on a GPU: no read-back between log steps
    run.data = SimpleNamespace(total_steps=10**6, warmup_steps=0, steps_per_epoch=10**6, on_device=None)
    run.out = Path(TMP.name)   # an empty run folder: a finiteness error finds no checkpoint in it
    return run


def make_step(run):
    "One optimizer step of the trainer (`Pretraining.train_step`) on the batch (v1, v2); the loss stays on the device."
    stop = StopRequest()   # never entered: no signal handlers
    def step(i, v1, v2):
        run.step = i
        loss, _, _ = run.train_step(iter([((v1, v2), None)]), stop)
        return loss
    return step


FLOPS = {}
TMP = tempfile.TemporaryDirectory(prefix='gpu_check_')   # synthetic images and empty run folders; removed at exit

@part('flops')
def _():
    from torch.utils.flop_counter import FlopCounterMode
    cfg = config()
    model = trainer(cfg).model
    n = 16   # the deputy band (2, 10) needs batches of 11 or more
    v1, v2 = views(n=n)
    with FlopCounterMode(display=False) as fc:
        model(v1, v2).backward()
    FLOPS['per_image'] = fc.get_total_flops() / n
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model.backbone.eval()(v1)
    return dict(train_step_gflop_per_image=FLOPS['per_image'] / 1e9, backbone_forward_gflop_per_image=fc.get_total_flops() / n / 1e9,
                note='train step: online forward+backward on both views + target forward; 2 FLOPs per multiply-add')


def train_row(precision, channels_last=False, compile=False, multires=False):
    cfg = config(precision=precision, channels_last=channels_last, compile=compile, multires=multires)
    run = trainer(cfg)
    step, scaler = make_step(run), run.scaler
    v1, v2 = views(channels_last)
    if compile:
        from torch._dynamo.utils import counters
        counters.clear()   # its graph_break entries count what dynamo could not capture while compiling below
    t0 = time.time()
    for i in range(2 if not compile else 3): loss = step(i, v1, v2)   # warm-up (and compilation)
    sync(); warm = time.time() - t0
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    for i in range(STEPS): loss = step(100 + i, v1, v2)
    sync(); dt = time.time() - t0
    if not math.isfinite(loss.item()): raise FloatingPointError(f'loss is {loss.item()}')
    ips = STEPS * B / dt
    res = dict(images_per_s=ips, step_ms=1000 * dt / STEPS, warmup_s=warm, loss=loss.item(), precision=precision,
               channels_last=channels_last, compile=compile and COMPILE_BACKEND, multires=multires,
               peak_memory_gib=torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else None)
    if precision == 'fp16': res['grad_scale'] = scaler.get_scale()
    if compile:   # what dynamo could not capture, and whether the compiled network computes what the eager one does
        model = run.model
        res['graph_breaks'] = sum(counters['graph_break'].values())
        res['graph_break_reasons'] = [str(k)[:200] for k in counters['graph_break']]
        with torch.autocast(dev.type, dtype=run.dtype or torch.bfloat16, enabled=run.dtype is not None):
            eager, compiled = model(v1, v2).float(), run.forward(v1, v2).float()   # the same weights and batch-norm statistics
        res['compiled_vs_eager_loss_rel_diff'] = abs(compiled.item() - eager.item()) / max(abs(eager.item()), 1e-12)
        if res['compiled_vs_eager_loss_rel_diff'] > 1e-2: raise AssertionError(f"compiled and eager losses differ: {compiled.item()} vs {eager.item()}")
    if 'per_image' in FLOPS and not multires:   # multires steps are smaller than 224: no fixed FLOP count
        res['tflops'] = FLOPS['per_image'] * ips / 1e12
        if peak.get(precision): res['fraction_of_peak'] = res['tflops'] / peak[precision]
    return res

for prec in ('bf16', 'fp16'):
    for cl, comp in ((False, False), (True, False), (True, True)):
        if prec == 'fp16' and comp: continue   # one compiled row (bf16) keeps the check within 8 minutes
        part(f"train/{prec}{'/channels_last' if cl else ''}{'/compile' if comp else ''}")(lambda: train_row(prec, cl, comp))
part('train/bf16/channels_last/multires')(lambda: train_row('bf16', True, False, multires=True))


def cudnn_benchmark_row():
    "The best eager row again with cudnn.benchmark (autotuned convolution algorithms; a no-op on the CPU)."
    torch.backends.cudnn.benchmark = True
    try: return {**train_row('bf16', True), 'cudnn_benchmark': True}
    finally: torch.backends.cudnn.benchmark = False

part('train/bf16/channels_last/cudnn_benchmark')(cudnn_benchmark_row)


@part('precision')
def _():
    "bf16 and fp16 against fp32 on the same weights and batch, through the trainer's own forward-backward: loss and gradients."
    v1, v2 = views(True)
    ref = {}
    for prec in ('fp32', 'bf16', 'fp16'):
        run = trainer(config(precision=prec, channels_last=True))
        loss = run._forward_backward(v1, v2, 0).float().item()
        scale = run.scaler.get_scale() if run.scaler.is_enabled() else 1.0
        grads = torch.cat([p.grad.float().flatten() / scale for p in run.model.parameters() if p.grad is not None])
        if prec == 'fp32': ref = dict(loss=loss, grads=grads); continue
        cos = torch.nn.functional.cosine_similarity(grads, ref['grads'], dim=0).item()
        ref[prec] = dict(loss=loss, loss_rel_diff=abs(loss - ref['loss']) / max(abs(ref['loss']), 1e-12), grad_cosine=cos,
                         grad_rel_norm_diff=((grads - ref['grads']).norm() / ref['grads'].norm()).item())
    res = dict(fp32_loss=ref['loss'], bf16=ref['bf16'], fp16=ref['fp16'])
    bad = [k for k in ('bf16', 'fp16') if not (res[k]['loss_rel_diff'] < 0.05 and res[k]['grad_cosine'] > 0.95)]
    if bad: raise AssertionError(f"{', '.join(bad)} far from fp32: {[res[k] for k in bad]}")
    return res


@part('nan_stops')
def _():
    "A NaN reaches the loss: the trainer's step (no per-step read-back) notes it on the device, its next finiteness check stops the run."
    run = trainer(config())
    step = make_step(run)
    v1, v2 = views()
    step(0, v1, v2)
    run.check_finite()   # finite so far
    step(1, v1.clone().fill_(float('nan')), v2)
    try: run.check_finite()
    except FloatingPointError as e: return dict(stopped=True, message=str(e)[:200])
    raise AssertionError('a NaN loss did not stop the run')


def synthetic_jpegs(n, name='jpegs'):
    import numpy as np
    from PIL import Image
    root = Path(TMP.name) / name
    rng = np.random.default_rng(0)
    h, w = (48, 64) if Q else (375, 500)
    for i in range(n):
        folder = root / 'train' / f'c{i % 10}'; folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f'{i}.jpg', quality=90)
    return root

PIPE = {}

def pipeline_row(device_side):
    from torch.utils.data import DataLoader
    from triplet_ssl.data import dataset_info, open_dataset
    from triplet_ssl.augment import Augmented, ResumableSampler, TwoViews, crop_flip, device_augmentation, ssl_augmentation
    batches = 3 if Q else 8
    if 'root' not in PIPE: PIPE['root'] = synthetic_jpegs(B * (batches + 1))
    info = dataset_info('image_folder'); mean, std = info['mean'], info['std']
    ds = open_dataset('image_folder', PIPE['root'], 'pretrain')
    tf = TwoViews(crop_flip(SIZE), crop_flip(SIZE)) if device_side else TwoViews(ssl_augmentation(1, SIZE, 3, mean, std), ssl_augmentation(2, SIZE, 3, mean, std))
    v = Augmented(ds, tf, seed=0)
    loader = DataLoader(v, batch_size=B, sampler=ResumableSampler(v, B), num_workers=WORKERS, drop_last=True, pin_memory=dev.type == 'cuda')
    augs = [device_augmentation(k, SIZE, 3, mean, std).to(dev) for k in (1, 2)] if device_side else None
    it = iter(loader); next(it)   # workers started
    t0, n = time.time(), 0
    for (v1, v2), _ in it:
        v1, v2 = v1.to(dev, non_blocking=True), v2.to(dev, non_blocking=True)
        if device_side: v1, v2 = augs[0](v1), augs[1](v2)
        n += len(v1)
    sync()
    return dict(images_per_s=n / (time.time() - t0), workers=WORKERS, images=n, jpeg=f"{'64x48' if Q else '500x375'}",
                note='decode + augmentation of both views, delivered to the device')

part('pipeline/cpu_workers')(lambda: pipeline_row(False))
part('pipeline/device_augment')(lambda: pipeline_row(True))


@part('pipeline/while_training')
def _():
    "The CPU-worker pipeline feeding the trainer's steps for 50 batches: images/s of the whole, and the share of it spent waiting for data."
    from torch.utils.data import DataLoader
    from triplet_ssl.data import dataset_info, open_dataset
    from triplet_ssl.augment import Augmented, ResumableSampler, TwoViews, ssl_augmentation
    batches = 50
    root = synthetic_jpegs(B * (batches + 1), 'while_training')
    info = dataset_info('image_folder')
    tf = TwoViews(*(ssl_augmentation(k, SIZE, 3, info['mean'], info['std']) for k in (1, 2)))
    v = Augmented(open_dataset('image_folder', root, 'pretrain'), tf, seed=0)
    loader = DataLoader(v, batch_size=B, sampler=ResumableSampler(v, B), num_workers=WORKERS, drop_last=True, pin_memory=dev.type == 'cuda',
                        persistent_workers=False)
    step = make_step(trainer(config(precision='bf16', channels_last=True)))
    it = iter(loader)
    (v1, v2), _ = next(it); step(0, v1.to(dev), v2.to(dev)); sync()   # workers started, step warm
    waited, t0, n = 0.0, time.time(), 0
    for i in range(batches):
        t = time.time()
        (v1, v2), _ = next(it)
        waited += time.time() - t
        step(1 + i, v1.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last),
             v2.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last))
        n += len(v1)
    sync(); dt = time.time() - t0
    return dict(images_per_s=n / dt, batches=batches, waiting_for_data=waited / dt, workers=WORKERS,
                note='a large waiting share: the GPU starves; more workers or device_augment')


@part('ddp/2_ranks')
def _():
    "Two processes in a real NCCL group through torchrun and the trainer (SyncBN), when there are two GPUs."
    if dev.type != 'cuda' or torch.cuda.device_count() < 2:
        return dict(skipped=True, reason=f"{torch.cuda.device_count() if dev.type == 'cuda' else 0} GPU(s) here: a 2-rank NCCL group needs 2")
    import subprocess
    out = Path(TMP.name) / 'ddp2'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '-m', 'triplet_ssl.train', 'cpu_demo', f'out_dir={out}',
           'max_steps=6', 'log_every=1', 'knn_bank_size=512', 'knn_test_size=256', 'sync_bn=true', 'device=cuda', 'epochs=1']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0: raise RuntimeError(f"torchrun exited {r.returncode}: {r.stderr[-400:]}")
    rows = [json.loads(l) for l in (out / 'steps.jsonl').read_text().splitlines()]
    run = json.loads((out / 'run.json').read_text())
    assert run['processes'] == 2 and len(rows) == 6 and all(math.isfinite(x['loss']) for x in rows), (run['processes'], rows)
    return dict(backend='nccl', processes=run['processes'], steps=len(rows), final_loss=rows[-1]['loss'])


@part('ddp')
def _():
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from triplet_ssl.distributed import free_port, gather_shards, all_reduce_mean
    backend = 'nccl' if dev.type == 'cuda' else 'gloo'
    dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1,
                            device_id=dev if dev.type == 'cuda' else None)
    try:
        cfg = config(precision='bf16', channels_last=True, sync_bn=True)
        run = trainer(cfg, net=lambda m: DDP(m, device_ids=[dev] if dev.type == 'cuda' else None))
        model, step = run.model, make_step(run)
        v1, v2 = views(True)
        step(0, v1, v2); sync()
        t0 = time.time()
        for i in range(STEPS): loss = step(1 + i, v1, v2)
        sync(); dt = time.time() - t0
        reduced = all_reduce_mean(loss.float()).item()
        gathered = gather_shards(torch.arange(5, device=dev))
        assert gathered.tolist() == list(range(5)) and math.isfinite(reduced)
        return dict(backend=backend, images_per_s=STEPS * B / dt, loss=reduced, sync_bn=type(model.backbone[1] if ARCH == 'narrow_resnet' else model.backbone.bn1).__name__)
    finally: dist.destroy_process_group()


@part('knn')
def _():
    import torch.nn.functional as F
    from triplet_ssl.evaluate import knn_predict
    n_bank, n_q, d, c = (2000, 256, 128, 10) if Q else (100_000, 10_000, 2048, 1000)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(c, d, generator=g)
    bank_y, q_y = torch.randint(0, c, (n_bank,), generator=g), torch.randint(0, c, (n_q,), generator=g)
    bank = F.normalize(centres[bank_y] + 0.5 * torch.randn(n_bank, d, generator=g), dim=1)
    queries = F.normalize(centres[q_y] + 0.5 * torch.randn(n_q, d, generator=g), dim=1)
    bank_d, bank_y_d, q_d = bank.to(dev), bank_y.to(dev), queries.to(dev)
    knn_predict(bank_d, bank_y_d, q_d[:256], c); sync()
    t0 = time.time(); pred = knn_predict(bank_d, bank_y_d, q_d, c).argmax(1); sync(); dt = time.time() - t0
    ref = knn_predict(bank, bank_y, queries[:256], c).argmax(1)
    agree = (pred[:256].cpu() == ref).float().mean().item()
    if agree < 0.99: raise AssertionError(f'device and CPU kNN agree on only {agree:.1%} of 256 queries')
    return dict(bank=n_bank, queries=n_q, dim=d, queries_per_s=n_q / dt, top1=100 * (pred.cpu() == q_y).float().mean().item(),
                agreement_with_cpu=agree)


# ---- the table and the JSON ----
rows, best = [], max((r.get('images_per_s', 0) for k, r in results['parts'].items() if k.startswith('train/')), default=0)
fmt = lambda v, f: '' if v is None else f.format(v)
print(f"\n{gpu_name} · torch {torch.__version__} · {ARCH} at {SIZE}px, batch {B} · peak bf16/fp16 TFLOP/s: "
      f"{peak['bf16'] or 'unknown'}/{peak['fp16'] or 'unknown'} ({results['meta']['peak_source']})")
print(f"{'part':38} {'status':8} {'img/s':>9} {'mem GiB':>8} {'TFLOP/s':>8} {'% peak':>7}  note")
for name, r in results['parts'].items():
    status = 'skipped' if r.get('skipped') else 'ERROR' if 'error' in r else 'ok'
    note = r.get('reason', '') if r.get('skipped') else r.get('error', '')[:80] if 'error' in r else (
        f"{r['train_step_gflop_per_image']:.1f} GFLOP/img (step), {r['backbone_forward_gflop_per_image']:.2f} (backbone fwd)" if name == 'flops' else
        f"{r['queries_per_s']:.0f} queries/s, {r['agreement_with_cpu']:.0%} = CPU" if name == 'knn' else
        f"bf16 loss {r['bf16']['loss_rel_diff']:.1e} rel., grad cos {r['bf16']['grad_cosine']:.4f}; fp16 {r['fp16']['loss_rel_diff']:.1e}, "
        f"{r['fp16']['grad_cosine']:.4f} (vs fp32)" if name == 'precision' else
        'a NaN loss stopped the run' if name == 'nan_stops' else
        f"waiting for data {r['waiting_for_data']:.0%} of the time" if name == 'pipeline/while_training' else
        (f"{'below' if r.get('images_per_s', 0) < best else 'above'} the best train row ({best:.0f} img/s)" if name.startswith('pipeline') else
         f"compile+warm-up {r['warmup_s']:.0f} s, {r['graph_breaks']} graph break(s), vs eager {r['compiled_vs_eager_loss_rel_diff']:.1e}"
         if r.get('compile') else r.get('backend', '')))
    print(f"{name:38} {status:8} {fmt(r.get('images_per_s'), '{:9.0f}'):>9} {fmt(r.get('peak_memory_gib'), '{:8.1f}'):>8} {fmt(r.get('tflops'), '{:8.1f}'):>8} "
          f"{fmt(r.get('fraction_of_peak') and 100 * r['fraction_of_peak'], '{:6.1f}%'):>7}  {note}")
if a.out: Path(a.out).write_text(json.dumps(results, indent=2, default=str))
errors = [k for k, r in results['parts'].items() if 'error' in r]
skipped = sum(bool(r.get('skipped')) for r in results['parts'].values())
print(f"\n{'wrote ' + a.out if a.out else 'no file written (--out FILE writes the JSON)'}; {len(results['parts']) - len(errors) - skipped} parts ok, {len(errors)} failed, {skipped} skipped"
      + (f": {', '.join(errors)}" if errors else ''))
sys.exit(1 if errors else 0)
