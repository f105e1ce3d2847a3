"""The loss where researchers already work (issue 21): lightly's BYOL with `TruncatedTripletLoss` swapped in, and the
paper's network as a PyTorch Lightning module, each a papermill run of its experiment notebook at a tiny size.
Each skips, naming the install command, where its optional extra is absent; CI installs the extras."""
import importlib.util, json, os, re, shutil, subprocess
import pytest
import torch
from helpers import BIN, ENV, REPO, as_args, run_quiet, tiny

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


# timm backbones through the command line: 2 steps, a checkpoint after each. The ViT at 32 px (a 2 x 2 patch grid; the kNN
# monitor sees Fashion-MNIST's own 28 px, padded to 32); the ConvNeXt at 64 px (its stride-32 stem-and-stages need more than 28).
def timm_run(size):
    return ['configs/cpu_demo.yaml', *as_args(tiny(train_size=64, batch_size=32, image_size=size, epochs=1, max_steps=2, knn_every=0,
                                                    knn_bank_size=100, knn_test_size=50, log_every=1, checkpoint_every=1, keep_last=5,
                                                    num_workers=0))]


@pytest.mark.parametrize('arch, width, size', [('timm:test_vit', 64, 32), ('timm:test_convnext', 64, 64)])   # timm's smallest test models
def test_timm_backbone_pretrains_resumes_exactly_and_is_evaluated(tmp_path, arch, width, size):
    need('timm', 'timm')
    from triplet_ssl.interop import read_backbone
    from triplet_ssl.runs import checkpoint_path, load_checkpoint
    ref = tmp_path / 'reference'
    r = run_quiet('-m', 'triplet_ssl.train', *timm_run(size), f'arch={arch}', f'out_dir={ref}')
    assert r.returncode == 0, r.stderr[-3000:]
    final = load_checkpoint(checkpoint_path(ref, 2))['model']
    assert final['projector.0.weight'].shape[1] == width   # the projector takes the model's own feature width
    sd, saved_arch, fmt = read_backbone(checkpoint_path(ref, 2))
    assert (saved_arch, fmt) == (arch, 'triplet-ssl') and sd.keys() == {k[len('backbone.'):] for k in final if k.startswith('backbone.')}
    # resume: the folder as it was after step 1, continued to step 2, ends with the same weights bit for bit
    resumed = tmp_path / 'resumed'
    shutil.copytree(ref, resumed)
    checkpoint_path(resumed, 2).unlink()
    r = run_quiet('-m', 'triplet_ssl.train', *timm_run(size), f'arch={arch}', f'out_dir={resumed}', 'resume=auto')
    assert r.returncode == 0 and 'resuming at step 1' in r.stdout, r.stderr[-3000:]
    again = load_checkpoint(checkpoint_path(resumed, 2))['model']
    assert final.keys() == again.keys() and all(torch.equal(v, again[k]) for k, v in final.items())
    # linear evaluation rebuilds the timm model from the arch the checkpoint records
    r = run_quiet('-m', 'triplet_ssl.linear', checkpoint_path(ref, 2), 'protocol=linear_features', 'train_size=200', 'test_size=100',
                  'epochs=2', f'image_size={size}', 'num_workers=0', f'out_dir={tmp_path / "linear"}')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'linear' / 'results.json').read_text())
    assert res['protocol'] == 'linear_features' and 0 <= res['top1'] <= res['top5'] <= 100, res


def test_unknown_timm_model_is_one_error_line():
    need('timm', 'timm')
    r = run_quiet('-m', 'triplet_ssl.train', 'arch=timm:test_vitt', 'out_dir=/nonexistent/never-written')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: arch='timm:test_vitt': timm has no model 'test_vitt' (did you mean test_vit"), r.stderr


def wandb_records(path):
    "The protobuf records of an offline W&B run file (`.wandb`: a 7-byte header, then records framed as in LevelDB's log, in 32 KiB blocks)."
    from wandb.proto import wandb_internal_pb2
    data, pos, parts = path.read_bytes(), 7, b''
    assert data[:4] == b':W&B', data[:7]
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7: pos += left; continue   # a block's tail too short for a record header is padding
        length, kind = int.from_bytes(data[pos + 4:pos + 6], 'little'), data[pos + 6]
        parts += data[pos + 7:pos + 7 + length]; pos += 7 + length
        if kind in (1, 4):   # a whole record, or the last piece of one
            rec = wandb_internal_pb2.Record(); rec.ParseFromString(parts); parts = b''
            yield rec


def history_row(record) -> dict:
    "A W&B history record as {key: value}; keys with a slash ('step/loss') are stored as nested keys."
    return {i.key or '/'.join(i.nested_key): json.loads(i.value_json) for i in record.history.item}


def test_trackers_get_the_run_and_its_evaluation(tmp_path, monkeypatch):
    "A 2-step run and its linear evaluation with every logger; each tool's own reader finds the parameters, scalars and files."
    need('wandb', 'wandb'); need('mlflow', 'mlflow')
    import mlflow
    env = {**ENV, 'MLFLOW_TRACKING_URI': f'sqlite:///{tmp_path / "mlflow.db"}'}
    env.pop('WANDB_MODE', None)   # offline by default
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))   # run from tmp_path
    out = tmp_path / 'run'
    r = subprocess.run([BIN / 'python', '-m', 'triplet_ssl.train', REPO / 'configs' / 'cpu_demo.yaml',
                        *as_args(tiny(train_size=128, batch_size=64, epochs=1, knn_bank_size=100, knn_test_size=50, log_every=1, num_workers=0)),
                        'loggers=[tensorboard,wandb,mlflow]', f'out_dir={out}'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    from triplet_ssl.linear import evaluate_checkpoint   # in this process (one interpreter start less)
    monkeypatch.setenv('MLFLOW_TRACKING_URI', env['MLFLOW_TRACKING_URI']); monkeypatch.delenv('WANDB_MODE', raising=False)
    monkeypatch.chdir(tmp_path)
    evaluate_checkpoint(out / 'checkpoint-00000002.pt', protocol='knn', train_size=200, test_size=100, num_workers=0,
                        loggers=['wandb', 'mlflow'], out_dir=str(tmp_path / 'knn'), log=None)
    steps = [row['loss'] for row in map(json.loads, (out / 'steps.jsonl').read_text().splitlines())]
    knn = json.loads((tmp_path / 'knn' / 'results.json').read_text())['top1']
    # MLflow: one run per job, found with mlflow.search_runs
    mlflow.set_tracking_uri(env['MLFLOW_TRACKING_URI'])
    runs = mlflow.search_runs(experiment_names=['triplet-ssl']).set_index('tags.kind')
    assert sorted(runs.index) == ['knn', 'pretrain'], runs.index
    pre, ev = runs.loc['pretrain'], runs.loc['knn']
    assert pre['params.arch'] == 'narrow_resnet' and pre['tags.run_folder'] == str(out) and pre['status'] == 'FINISHED'
    history = mlflow.MlflowClient().get_metric_history(pre['run_id'], 'step/loss')
    assert [(m.step, m.value) for m in history] == [(1, pytest.approx(steps[0])), (2, pytest.approx(steps[1]))]
    assert 'metrics.epoch/knn_top1' in runs.columns and ev['metrics.eval/top1'] == pytest.approx(knn) and ev['params.protocol'] == 'knn'
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(pre['run_id'])} == {'config.yaml', 'metrics.jsonl', 'steps.jsonl'}
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(ev['run_id'])] == ['metrics.jsonl', 'results.json']   # its rows, its results
    assert (tmp_path / 'mlruns').is_dir()   # the artifacts: in the working directory's ./mlruns
    # W&B: the offline run files under <out_dir>/wandb, read record by record
    (run_file,) = out.glob('wandb/offline-run-*/*.wandb')
    records = list(wandb_records(run_file))
    config = {i.key: json.loads(i.value_json) for r in records if r.HasField('run') for i in r.run.config.update}
    assert config['arch'] == 'narrow_resnet' and config['run_folder'] == str(out), config
    history = [history_row(r) for r in records if r.HasField('history')]
    assert [(h['_step'], h['step/loss']) for h in history if 'step/loss' in h] == [(1, pytest.approx(steps[0])), (2, pytest.approx(steps[1]))]
    assert {f.path for r in records if r.HasField('files') for f in r.files.files} >= {'run/config.yaml', 'run/steps.jsonl', 'run/metrics.jsonl'}
    (eval_file,) = (tmp_path / 'knn').glob('wandb/offline-run-*/*.wandb')
    summary = [history_row(r) for r in wandb_records(eval_file) if r.HasField('history')]
    assert any(h.get('eval/top1') == pytest.approx(knn) for h in summary), summary


def test_a_missing_tracker_is_one_error_line(tmp_path):
    "Without wandb installed (here: an import that fails), loggers=[wandb] stops at the config with the install command."
    (tmp_path / 'wandb').mkdir()
    (tmp_path / 'wandb' / '__init__.py').write_text("raise ImportError('no wandb here')\n")
    env = {**ENV, 'PYTHONPATH': os.pathsep.join([str(tmp_path), ENV.get('PYTHONPATH', '')])}
    r = subprocess.run([BIN / 'python', '-m', 'triplet_ssl.train', 'loggers=[tensorboard,wandb]', f'out_dir={tmp_path / "run"}'],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == ("error: loggers=['tensorboard', 'wandb'] needs wandb, which is not installed: "
                                                 "pip install 'triplet-ssl[wandb]'."), r.stderr
    assert not (tmp_path / 'run').exists()
