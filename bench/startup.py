"""Start-up: `import triplet_ssl.train` against `import torch`, and the pretraining command's `--help` and argument errors.

    .venv/bin/python bench/startup.py [--repeats 5]

Each command is a fresh Python process, run in turn with the others (`repeats` rounds); printed per command: the median
wall time and CPU time (user + system of the process, which a loaded machine disturbs less), their ranges, and the ratio
of medians to `import torch`.
"""
import argparse, os, resource, statistics, subprocess, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--repeats', type=int, default=5)
a = p.parse_args()
ENV = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])])}
COMMANDS = {
    'import torch': ['-c', 'import torch'],
    'import triplet_ssl.train': ['-c', 'import triplet_ssl.train'],
    'python -m triplet_ssl.train --help': ['-m', 'triplet_ssl.train', '--help'],
    'python -m triplet_ssl.train epochs=two': ['-m', 'triplet_ssl.train', 'epochs=two'],
}


def timed(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


times = {k: [] for k in COMMANDS}
for r in range(a.repeats):
    for name in (list(COMMANDS) if r % 2 == 0 else list(COMMANDS)[::-1]):
        times[name].append(timed(COMMANDS[name]))
med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
ref = med['import torch']
print(f"{a.repeats} rounds, {os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
print("| command | wall s (median, range) | CPU s (median, range) | wall / import torch | CPU / import torch |\n|---|---|---|---|---|")
for k, v in times.items():
    w, c = [x for x, _ in v], [y for _, y in v]
    print(f"| `{k}` | {med[k][0]:.2f} ({min(w):.2f}-{max(w):.2f}) | {med[k][1]:.2f} ({min(c):.2f}-{max(c):.2f}) | "
          f"{med[k][0] / ref[0]:.2f} | {med[k][1] / ref[1]:.2f} |")
