"""The library notebooks' two-process checks, on gloo CPU processes started by `launch` (03_distributed: all-reduce,
gathering shards, SyncBN; 04_models: MoCo v2's queue; 10_evaluate: sharded kNN). They live here, not in the notebooks:
`launch` spawns its workers, which import their entry point by name (tests/workers.py); a function defined in a notebook
kernel cannot be pickled for spawn. The notebooks keep the one-process checks of the same functions."""
import torch
import torch.nn.functional as F
from torch import nn
from fastcore.test import test_close as check_close, test_eq as check_eq   # renamed: pytest would collect test_*

import workers
from triplet_ssl.distributed import launch


def test_all_reduce_mean_over_two_processes():
    out = launch(workers.all_reduce, 5.0, nproc_per_node=2)
    check_eq(sorted(out.values()), [(0, 2, 5.5), (1, 2, 5.5)])


def test_gather_shards_puts_every_item_once_in_order():
    for n in (7, 8, 1):   # uneven shards, even shards, one process without any item
        res = launch(workers.gather_range, n, nproc_per_node=2)
        check_eq(res[0][1], torch.arange(0, n, 2))   # rank 0: items 0, 2, 4, ...
        check_eq(res[1][1], torch.arange(1, n, 2))   # rank 1: items 1, 3, ...
        for r in (0, 1): check_eq(res[r][0], torch.arange(n).float()[:, None].repeat(1, 3))   # every item once, in order


def test_gloo_syncbn_matches_batchnorm_on_the_whole_batch():
    "Outputs, input gradients, running statistics and parameter gradients (each process holds its half's; their sum is the whole's)."
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    res = launch(workers.syncbn_halves, x, nproc_per_node=2)
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    with torch.no_grad(): bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-1, 1)
    xr = x.clone().requires_grad_()
    out = bn(xr)
    sum((out[r::2] * torch.arange(12).view(4, 3).float()).sum() for r in (0, 1)).backward()
    check_close(torch.stack([res[0][0], res[1][0]], 1).reshape(8, 3), out.detach(), eps=1e-5)
    check_close(torch.stack([res[0][1], res[1][1]], 1).reshape(8, 3), xr.grad, eps=1e-5)
    check_close(res[0][2], bn.running_mean, eps=1e-6); check_close(res[0][3], bn.running_var, eps=1e-6)
    check_close(res[0][4] + res[1][4], bn.weight.grad, eps=1e-4)


def test_moco_queue_holds_the_global_batch_in_rank_order():
    "Two processes with half a batch each (and SyncBN) hold the queue one process holds with the whole batch."
    from triplet_ssl.models import build_backbone, build_ssl
    torch.manual_seed(0)
    v1, v2 = torch.randn(12, 1, 28, 28), torch.randn(12, 1, 28, 28)
    res = launch(workers.moco_queue, v1, v2, 40, None, nproc_per_node=2)   # rank r: rows 6r..6r+5 of the 12
    check_eq(res[0][0], res[1][0]); check_eq((res[0][1], res[1][1]), (24, 24))   # the same queue, 2 x (6 + 6) keys enqueued
    torch.manual_seed(0)
    one = build_ssl('mocov2', build_backbone('narrow_resnet', 1), 64, 16, 64, None, 40)
    with torch.no_grad(): k1, k2 = (F.normalize(one.target_network(v), dim=1) for v in (v1, v2))   # BN over the whole batch, as SyncBN
    check_close(res[0][0][:24], torch.cat([k1[:6], k2[:6], k1[6:], k2[6:]]), eps=1e-4)   # rank 0's keys, then rank 1's
    check_eq(res[0][0][24:], one.queue[24:])   # the rest of the queue untouched


def test_knn_evaluate_on_two_processes_equals_one():
    from triplet_ssl.augment import Augmented, eval_transform
    from triplet_ssl.data import dataset_info, open_dataset, subset_dataset
    info = dataset_info('fashion_mnist')
    tf = eval_transform(info['size'], info['channels'], info['mean'], info['std'])
    bank_set = Augmented(subset_dataset(open_dataset('fashion_mnist', None, 'train'), 601, 0), tf)   # odd sizes: uneven shards
    test_set = Augmented(subset_dataset(open_dataset('fashion_mnist', None, 'test'), 203, 0), tf)
    threads = torch.get_num_threads()
    try: one = workers.knn(bank_set, test_set, 10, 20)   # this process, without a process group
    finally: torch.set_num_threads(threads)
    two = launch(workers.knn, bank_set, test_set, 10, 20, nproc_per_node=2)
    for r in (0, 1):
        check_eq(two[r]['top1'], one['top1']); check_eq(two[r]['top5'], one['top5'])   # exactly
        check_eq(two[r]['labels'], one['labels']); check_close(two[r]['queries'], one['queries'], eps=1e-5)   # every test image once, in order
    check_eq(len(one['labels']), 203)
