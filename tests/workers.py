"""Entry points of the multi-process checks in test_multiprocess.py, one per library feature.

`launch` starts its workers with the `spawn` method: each worker is a fresh interpreter that imports its entry point by
module and name, so the entry point must live in an importable module (a function defined in a notebook kernel or in a
test's body cannot be pickled for spawn). They live here, beside the tests, and not in the package: spawn hands the
parent's sys.path to its children, so a worker imports `workers` from tests/ as the test did."""
import torch
import torch.distributed as dist
from torch import nn

from triplet_ssl.distributed import all_reduce_mean, convert_sync_batchnorm, gather_shards, init_distributed, shard


def all_reduce(x: float) -> tuple[int, int, float]:
    "Each rank contributes x + rank; returns (rank, world, mean)."
    rank, world, _ = init_distributed('cpu')
    mean = all_reduce_mean(torch.tensor(x + rank)).item()
    dist.destroy_process_group()
    return rank, world, mean


def gather_range(n: int) -> tuple:
    "Each rank sends the rows of its shard of range(n) (as floats); returns the gathered dataset and the rank's shard."
    init_distributed('cpu')
    mine = torch.tensor(list(shard(range(n))), dtype=torch.float32)[:, None].repeat(1, 3)
    out = gather_shards(mine)
    dist.destroy_process_group()
    return out, mine[:, 0].long()


def syncbn_halves(x: torch.Tensor) -> tuple:
    "Rank r normalises rows r::2 of x; returns the output, the input gradient, the running stats and the weight's gradient."
    rank, world, dev = init_distributed('cpu')
    torch.manual_seed(0)
    bn = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(x.shape[1])), dev)
    with torch.no_grad(): bn[0].weight.uniform_(0.5, 1.5); bn[0].bias.uniform_(-1, 1)
    xi = x[rank::world].clone().requires_grad_()
    out = bn(xi)
    (out * torch.arange(out.numel()).view_as(out).float()).sum().backward()
    dist.destroy_process_group()
    return out.detach(), xi.grad, bn[0].running_mean, bn[0].running_var, bn[0].weight.grad


def moco_queue(v1: torch.Tensor, v2: torch.Tensor, queue_size: int, temperature: float) -> tuple:
    "Each process puts its contiguous block of the batch through MoCo v2 with SyncBN; returns the queue and its pointer."
    from triplet_ssl.models import build_backbone, build_ssl
    rank, world, dev = init_distributed('cpu')
    torch.manual_seed(0)
    mo = convert_sync_batchnorm(build_ssl('mocov2', build_backbone('narrow_resnet', 1), 64, 16, 64, temperature, queue_size), dev)
    n = len(v1) // world
    mo(v1[rank * n:(rank + 1) * n], v2[rank * n:(rank + 1) * n])
    dist.destroy_process_group()
    return mo.queue, mo.queue_ptr.item()


def knn(bank_set, test_set, num_classes: int, k: int) -> dict:
    "`knn_evaluate` of a seeded narrow ResNet on CPU processes (on one, without a process group)."
    from triplet_ssl.evaluate import knn_evaluate
    from triplet_ssl.models import build_backbone
    rank, world, _ = init_distributed('cpu')
    torch.set_num_threads(1)
    torch.manual_seed(0)
    res = knn_evaluate(build_backbone('narrow_resnet', 1), bank_set, test_set, num_classes, k, batch_size=64, return_queries=True)
    if world > 1: dist.destroy_process_group()
    return res
