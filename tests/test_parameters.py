"""The experiment notebooks' `parameters` cells mirror the dataclasses the library reads: every parameter names a field
(or a launcher argument), and every default equals the dataclass's, unless the difference is listed here with its
reason. A default changed in one place and not the other fails here."""
import ast, dataclasses, inspect, json
import yaml
from helpers import REPO


def notebook_parameters(name: str) -> dict:
    "The `parameters` cell of nbs/experiments/NAME.ipynb as {name: value} (its values are literals)."
    cells = json.loads((REPO / 'nbs' / 'experiments' / f'{name}.ipynb').read_text())['cells']
    cell = next(c for c in cells if 'parameters' in c['metadata'].get('tags', []))
    return {n.target.id: ast.literal_eval(n.value) for n in ast.parse(''.join(cell['source'])).body if isinstance(n, ast.AnnAssign)}


def differences(cls, params: dict) -> dict:
    "{field: (notebook value, dataclass default)} where they differ, each value read through the dataclass (lists -> tuples, ...)."
    default = cls()
    return {k: (v, getattr(default, k)) for k, v in params.items() if getattr(cls(**{k: v}), k) != getattr(default, k)}


def test_pretrain_parameters_are_config_fields_with_its_defaults():
    from triplet_ssl.train import Config, run
    params = notebook_parameters('pretrain')
    launcher = {k: p.default for k, p in inspect.signature(run).parameters.items() if k != 'cfg'}   # gpus, nodes, ... of train.run
    fields = {f.name for f in dataclasses.fields(Config)}
    assert set(params) == fields | set(launcher), (set(params) ^ (fields | set(launcher)))
    assert {k: params[k] for k in launcher} == launcher
    assert differences(Config, {k: v for k, v in params.items() if k in fields}) == {}   # the notebook runs Config's defaults
    demo = yaml.safe_load((REPO / 'configs' / 'cpu_demo.yaml').read_text())   # says: the same values as Config and the notebook
    assert set(demo) <= set(params) and differences(Config, {k: v for k, v in demo.items() if k in fields}) == {}
    assert {k: v for k, v in demo.items() if k in launcher} == {k: launcher[k] for k in demo if k in launcher}


def test_linear_eval_parameters_are_evalconfig_fields_with_its_defaults():
    from triplet_ssl.linear import EvalConfig
    params = notebook_parameters('linear_eval')
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    own = {'checkpoint', 'run_dir'}   # which checkpoint to evaluate: a file, or the newest in a run folder
    assert set(params) == fields | own, set(params) ^ (fields | own)
    # Deliberate: the notebook's defaults evaluate a CPU demo run in minutes, as configs/linear/cpu.yaml does (a 10k/2k subset,
    # 10 epochs, 1 warm-up epoch, one loader worker); EvalConfig's are the paper's protocol (all images, 100 epochs) with the per-step lr schedule (short.yaml/long.yaml: mmcv's).
    quick = {'train_size', 'test_size', 'epochs', 'warmup_epochs', 'num_workers'}
    diff = differences(EvalConfig, {k: v for k, v in params.items() if k in fields})
    assert set(diff) == quick, set(diff) ^ quick
    cpu = yaml.safe_load((REPO / 'configs' / 'linear' / 'cpu.yaml').read_text())
    assert {k: params[k] for k in quick} == {k: cpu[k] for k in quick}


def test_library_function_defaults_equal_configs():
    """The loss's own `gamma`, `margin`, `negatives` (its paper definition, for a caller of `truncated_triplet_loss`) and the
    kNN functions' `k`, `t` (InstDisc's monitor) are the only defaults also written outside `Config`: they must agree."""
    from triplet_ssl.config import Config
    from triplet_ssl.evaluate import knn_evaluate, knn_predict, knn_top1
    from triplet_ssl.losses import truncated_triplet_loss
    default = lambda f, name: inspect.signature(f).parameters[name].default
    loss = {k: default(truncated_triplet_loss, k) for k in ('gamma', 'margin', 'negatives')}
    assert loss == {k: getattr(Config, k) for k in loss}, loss
    assert inspect.signature(truncated_triplet_loss).parameters['deputy'].default is inspect.Parameter.empty   # Config's alone
    for f in (knn_predict, knn_top1, knn_evaluate): assert (default(f, 'k'), default(f, 't')) == (Config.knn_k, Config.knn_t), f.__name__
