"""The loss where researchers already work (issue 21): lightly's BYOL with `TruncatedTripletLoss` swapped in, and the
paper's network as a PyTorch Lightning module, each a papermill run of its experiment notebook at a tiny size.
Each skips, naming the install command, where its optional extra is absent; CI installs the extras."""
import importlib.util, json, re, subprocess
import pytest
from helpers import BIN, ENV, REPO

pytestmark = pytest.mark.slow   # whole (tiny) runs
TINY_RUN = ['-p', 'train_size', '256', '-p', 'epochs', '1', '-p', 'batch_size', '64', '-p', 'knn_bank_size', '200',
            '-p', 'knn_test_size', '100', '-p', 'num_workers', '0']


def need(module: str, extra: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install 'triplet-ssl[{extra}]' (CI installs it)")


def execute(name: str, out, *args) -> str:
    "Run nbs/experiments/NAME.ipynb headlessly; its printed text."
    r = subprocess.run([BIN / 'papermill', f'nbs/experiments/{name}.ipynb', str(out), *args, '--no-progress-bar'], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    cells = json.loads(out.read_text())['cells']
    return ''.join(''.join(o.get('text', '')) for c in cells for o in c.get('outputs', []))


def test_lightly_byol_with_the_truncated_triplet_loss(tmp_path):
    need('lightly', 'lightly')
    text = execute('with_lightly', tmp_path / 'out.ipynb', *TINY_RUN, '-p', 'deputy', 'median')
    assert "triplet: TruncatedTripletLoss(deputy='median', gamma=2.0, margin=100.0, gather_distributed=False)" in text, text
    assert re.search(r'triplet: kNN top-1 \d+\.\d\d% untrained -> \d+\.\d\d% after 1 epochs', text), text
    assert re.search(r'negative_cosine: kNN top-1 \d+\.\d\d% untrained', text), text   # lightly's own loss, same loop
    losses = [float(x) for x in re.findall(r'epoch 1: loss (-?\d+\.\d+)', text)]
    assert len(losses) == 2 and 90 < losses[0] < 110 and -1 <= losses[1] <= 1, losses   # margin 100 vs a negative cosine


def test_lightning_module_with_the_truncated_triplet_loss(tmp_path):
    need('lightning', 'lightning')
    text = execute('with_lightning', tmp_path / 'out.ipynb', *TINY_RUN, '-p', 'out_dir', tmp_path / 'logs')
    m = re.search(r'256 images, (\d+) steps: kNN top-1 \d+\.\d\d% untrained -> \d+\.\d\d% .* last loss (\d+\.\d+), deputy similarity', text)
    assert m and int(m.group(1)) == 4 and 180 < float(m.group(2)) < 220, text   # 256 / 64 steps; two directions near 2 x 100
    logged = (tmp_path / 'logs' / 'lightning_logs' / 'version_0' / 'metrics.csv').read_text().splitlines()
    assert {'loss', 'deputy_similarity', 'positive_similarity', 'active_fraction'} <= set(logged[0].split(',')), logged[0]
