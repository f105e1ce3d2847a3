"""Does storing re-ID features in float16 instead of float32 change the retrieval? Measured on trained features, with a
Fashion-MNIST checkpoint standing in for a re-ID gallery (no SYSU-30k here): the test split's first QUERIES images are the
queries (camera 2), the rest the gallery (camera 1), the class is the identity. Features are the authors' flip feature
(triplet_ssl.reid.flip_features), computed in float32 and stored once as float32 and once as float16.

    .venv/bin/python bench/reid_feature_dtype.py CHECKPOINT [--queries 1000]

Prints rank-1 / mAP for both and how many queries' top-1 gallery image (and rank-1 hit) changed.
"""
import argparse, time
import numpy as np
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('checkpoint'); p.add_argument('--queries', type=int, default=1000); p.add_argument('--data-dir', default=None)
    a = p.parse_args()
    from triplet_ssl.data import dataset_info, load_fashion_mnist
    from triplet_ssl.interop import load_backbone
    from triplet_ssl.reid import flip_features, reid_metrics
    torch.manual_seed(0)
    info = dataset_info('fashion_mnist')
    images, labels = load_fashion_mnist(a.data_dir, 'test')
    net = load_backbone(a.checkpoint, None, info['channels']).eval()
    x = (images.float() / 255 - torch.tensor(info['mean'][:1]).view(1, -1, 1, 1)) / torch.tensor(info['std'][:1]).view(1, -1, 1, 1)
    t0 = time.time()
    with torch.no_grad(): f = torch.cat([flip_features(net, b) for b in x.split(500)]).numpy()
    q, g = slice(0, a.queries), slice(a.queries, None)
    ids, n_q = labels.numpy() + 1, a.queries
    rows = {}
    for name, dtype in (('float32', np.float32), ('float16', np.float16)):
        stored = f.astype(dtype)
        r = reid_metrics(stored[q], ids[q], np.full(n_q, 2), stored[g], ids[g], np.ones(len(ids) - n_q, np.int64))
        top = (stored[q].astype(np.float32) @ stored[g].astype(np.float32).T).argmax(1)
        rows[name] = (r, top)
        print(f"{name}: rank-1 {r['rank1']:.2f}  rank-5 {r['rank5']:.2f}  mAP {r['mAP']:.3f}  ({r['queries']} queries, {len(ids) - n_q} gallery, {f.shape[1]}-d)")
    (r32, t32), (r16, t16) = rows['float32'], rows['float16']
    hit = lambda t: ids[g][t] == ids[q]
    print(f"float16 vs float32: top-1 gallery image changed for {int((t32 != t16).sum())} of {n_q} queries, rank-1 hit changed for "
          f"{int((hit(t32) != hit(t16)).sum())}; rank-1 {r16['rank1'] - r32['rank1']:+.2f}, mAP {r16['mAP'] - r32['mAP']:+.4f} points "
          f"({time.time() - t0:.0f} s)")


if __name__ == '__main__': main()
