"""The deputy-rank study notebook (nbs/experiments/deputy_study.ipynb) under papermill on tiny data: it runs the grid,
appends each run to results.jsonl as it finishes, stops launching at time_budget_min (0: analyses the finished runs only), and a rerun reuses what is done."""
import json, subprocess
from helpers import BIN, ENV, REPO


def papermill(out, **params):
    args = [a for k, v in params.items() for a in (('-y', f'{k}: {v}') if isinstance(v, list) else ('-p', k, str(v)))]
    return subprocess.run([BIN / 'papermill', 'nbs/experiments/deputy_study.ipynb', str(out), *args, '--no-progress-bar'], cwd=REPO,
                          capture_output=True, text=True, timeout=900, env={**ENV, 'OMP_NUM_THREADS': '1'})


def test_deputy_study_runs_resumes_and_reports(tmp_path):
    # batch 16 mined in halves, N = 8: ranks 4 (safe at C = 10, and the median) and 5 (0.75 quantile); batches over 10 and 2 classes
    tiny = dict(train_size=320, batch_size=16, settings=[[8, 10], [8, 2]], seeds=[0], hardest=False, knn_bank_size=100,
                knn_test_size=100, purity_batches=2, out_root=tmp_path / 'runs', figures_dir=tmp_path / 'figs')
    r = papermill(tmp_path / 'a.ipynb', **tiny, workers=1, time_budget_min=0.01)   # stops launching after the first run
    assert r.returncode == 0, r.stderr[-4000:]
    first = (tmp_path / 'runs' / 'results.jsonl').read_text().splitlines()
    assert len(first) == 1 and '1 of 4 runs finished' in (tmp_path / 'a.ipynb').read_text()
    (tmp_path / 'runs' / 'results.jsonl').write_text('')   # as if the notebook had stopped between finishing the run and recording it
    r = papermill(tmp_path / 'z.ipynb', **tiny, time_budget_min=0)   # analysis only: the finished run, nothing launched
    assert r.returncode == 0, r.stderr[-4000:]
    z = (tmp_path / 'z.ipynb').read_text()
    assert 'no run launched' in z and 'finished in its folder, recorded now' in z
    adopted = (tmp_path / 'runs' / 'results.jsonl').read_text().splitlines()
    assert len(adopted) == 1 and json.loads(adopted[0])['knn_top1'] == json.loads(first[0])['knn_top1']
    r = papermill(tmp_path / 'b.ipynb', **tiny, workers=2)
    assert r.returncode == 0, r.stderr[-4000:]
    assert '1 runs already in' in (tmp_path / 'b.ipynb').read_text()
    lines = (tmp_path / 'runs' / 'results.jsonl').read_text().splitlines()
    assert lines[0] == adopted[0] and len(lines) == 4                              # the finished run was kept, not redone
    res = json.loads((tmp_path / 'figs' / 'deputy_study.json').read_text())
    assert sorted((r['N'], r['C'], r['k']) for r in res['runs']) == [(8, 2, 4), (8, 2, 5), (8, 10, 4), (8, 10, 5)]
    assert all(0 < r['knn_top1'] <= 100 and r['steps'] == 20 for r in res['runs'])
    assert {(v['N'], v['C'], v['predicted']) for v in res['verdicts']} == {(8, 10, 4), (8, 2, None)}   # N=8, C'=2: no grid rank is safe
    table = (tmp_path / 'figs' / 'deputy_study.md').read_text()
    assert '| 8 | 10 | 0.7 | 4 |' in table and '| 8 | 2 | 3.5 | 7 |' in table, table
    assert (tmp_path / 'figs' / 'deputy_study.png').stat().st_size > 10_000
    assert '| 8 | 2 | 5 | 0.77 |' in table, table   # the measured purity of the trained network beside the model's P(X < 5)
