"""Training speed through every documented route, as ratios to the fastest, measured side by side.

    .venv/bin/python bench/entry_points.py [--steps 25] [--repeats 2] [--batch_size 256] [--routes cli api ...]

Routes (each a fresh process, each the same run: the CPU demo preset, `max_steps` = 5 + steps, 1 loader worker):
- papermill: the experiment notebook, `papermill nbs/experiments/pretrain.ipynb ... -f configs/cpu_demo.yaml` (`make demo`);
- cli: `python -m triplet_ssl.train cpu_demo key=value ...`;
- console: the `triplet-ssl-train` console script;
- api: `train(load_config(...))` from a Python script;
- kernel: a Jupyter kernel (nbclient) running a notebook that imported torch *before* triplet_ssl (OpenMP's wait policy is
  then fixed; `triplet_ssl.distributed.quiet_openmp` parks an idle OpenMP team so that GNU OpenMP stops spinning);
- torchrun: `torchrun --nproc_per_node=1 -m triplet_ssl.train ...`.
Every route runs without OMP_WAIT_POLICY in its environment (as a user who was never told about it), unless --env is given.
The rate of a route is its steady training speed: the images of `steps` optimizer steps after the 5th over their time,
read from the run's own steps.jsonl (its images/s are cumulative from the epoch's start, so two rows give the steps between).
Routes run in turn, `repeats` rounds; printed: median images/s per route, its range, and the ratio of medians to the fastest.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUTES = ['papermill', 'cli', 'console', 'api', 'kernel', 'torchrun']
p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--steps', type=int, default=25, help='steady optimizer steps timed per run (after 5 warm-up steps)')
p.add_argument('--repeats', type=int, default=2, help='rounds over the routes')
p.add_argument('--batch_size', type=int, default=256)
p.add_argument('--routes', nargs='*', default=ROUTES, choices=ROUTES)
p.add_argument('--env', nargs='*', default=[], help='KEY=VALUE added to every route (e.g. OMP_WAIT_POLICY=PASSIVE to compare)')
a = p.parse_args()

WARM = 5
PARAMS = dict(max_steps=WARM + a.steps, log_every=WARM, epochs=1, batch_size=a.batch_size, knn_bank_size=200, knn_test_size=100,
              knn_every=0, num_workers=1, device='cpu')
ENV = {k: v for k, v in os.environ.items() if k not in ('OMP_WAIT_POLICY', 'OMP_NUM_THREADS')}
ENV.update(dict(kv.split('=', 1) for kv in a.env), PYTHONWARNINGS='ignore', PYTHONPATH=os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])]))


def overrides(out) -> list[str]: return [f'{k}={v}' for k, v in {**PARAMS, 'out_dir': out}.items()]


def command(route: str, out: Path, work: Path) -> list[str]:
    api = (f"from triplet_ssl.config import load_config\nfrom triplet_ssl.train import train\n"
           f"train(load_config({str(REPO / 'configs/cpu_demo.yaml')!r}, {overrides(out)!r}), progress=False)")
    if route == 'papermill':
        return [str(BIN / 'papermill'), str(REPO / 'nbs/experiments/pretrain.ipynb'), str(work / 'out.ipynb'), '-f',
                str(REPO / 'configs/cpu_demo.yaml'), *[x for k, v in {**PARAMS, 'out_dir': str(out)}.items() for x in ('-p', k, str(v))]]
    if route == 'cli': return [sys.executable, '-m', 'triplet_ssl.train', 'cpu_demo', *overrides(out)]
    if route == 'console':
        script = BIN / 'triplet-ssl-train'
        return [str(script), 'cpu_demo', *overrides(out)] if script.exists() else \
               [sys.executable, '-c', "import sys; sys.argv[0] = 'triplet-ssl-train'; from triplet_ssl.train import main; main()", 'cpu_demo', *overrides(out)]
    if route == 'api': return [sys.executable, '-c', api]
    if route == 'torchrun': return [str(BIN / 'torchrun'), '--nproc_per_node=1', '-m', 'triplet_ssl.train', 'cpu_demo', *overrides(out)]
    if route == 'kernel':   # a notebook in a Jupyter kernel, torch imported first
        import nbformat
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('import torch'), nbformat.v4.new_code_cell(api)])
        nbformat.write(nb, work / 'kernel.ipynb')
        code = (f"import nbformat, nbclient; nb = nbformat.read({str(work / 'kernel.ipynb')!r}, 4)\n"
                "nbclient.NotebookClient(nb, timeout=None, kernel_name='python3').execute()")
        return [sys.executable, '-c', code]


def steady_rate(out: Path) -> float:
    "Images/s over the steps after the warm-up, from steps.jsonl's cumulative images/s (seen since the epoch's start over its time)."
    rows = {r['step']: r for r in map(json.loads, (out / 'steps.jsonl').read_text().splitlines())}
    first, last = WARM, WARM + a.steps
    t = lambda k: k * a.batch_size / rows[k]['images_per_s']
    return (last - first) * a.batch_size / (t(last) - t(first))


rates, failed = {r: [] for r in a.routes}, False
start = time.time()
for rnd in range(a.repeats):
    for route in (a.routes if rnd % 2 == 0 else a.routes[::-1]):   # alternate the order: drifts in load hit every route alike
        work = Path(tempfile.mkdtemp(prefix=f'entry_{route}_'))
        out = work / 'run'
        # a session of its own, as torchrun's workers and Jupyter kernels get: with the kernel's autogroup scheduling, a route sharing
        # this script's session would share one CPU share with whatever else runs in it (measured: 2x slower than the others)
        r = subprocess.run(command(route, out, work), cwd=work, env=ENV, capture_output=True, text=True, start_new_session=True)
        if r.returncode != 0:
            print(f"{route} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}", flush=True); failed = True; continue
        rates[route].append(steady_rate(out))
        print(f"round {rnd + 1} {route:9} {rates[route][-1]:7.1f} img/s  (load average {os.getloadavg()[0]:.1f})", flush=True)
        shutil.rmtree(work, ignore_errors=True)

medians = {k: statistics.median(v) for k, v in rates.items() if v}
best = max(medians.values())
print(f"\n{a.steps} steady steps of batch {a.batch_size} per run, {a.repeats} round(s), {os.cpu_count()} CPUs, "
      f"{(time.time() - start) / 60:.0f} min, load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
      f"extra environment: {' '.join(a.env) or 'none (OMP_WAIT_POLICY unset)'}")
print("| route | img/s (median) | range | ratio to the fastest |\n|---|---|---|---|")
for k, m in medians.items(): print(f"| {k} | {m:.1f} | {min(rates[k]):.1f}-{max(rates[k]):.1f} | {m / best:.2f} |")
sys.exit(1 if failed else 0)
