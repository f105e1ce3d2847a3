"""Execute the library notebooks in place, keeping their outputs (`make notebooks`), or check them (`--check`).

    python tools/run_notebooks.py                       # every library notebook (nbs/[0-9]*.ipynb, nbs/index.ipynb)
    python tools/run_notebooks.py nbs/00_losses.ipynb   # some of them
    python tools/run_notebooks.py --flags slow          # also run the cells behind nbdev's `slow` flag
    python tools/run_notebooks.py --check nbs/00_losses.ipynb   # re-execute into memory, compare with the committed outputs

Cells run exactly as `nbdev_test` runs them: cells flagged with a `tst_flags` flag of settings.ini (`#| slow`),
`#| eval: false` cells and `nbdev_export()` cells are skipped and keep whatever output they already carry (a
slow cell keeps the output of its last real run). Each notebook runs in its own fresh Jupyter kernel (nbclient),
from `nbs/`, as in JupyterLab or papermill: figures come out through the inline backend as PNG. Outputs are kept
small and stable: `TQDM_DISABLE=1` in the kernel (no progress bars), no execution counts and no timing metadata
(as `nbdev_clean` leaves them), object ids removed from reprs (`nbdev_clean`'s `clean_ids`), temporary folder
names in text outputs replaced by `<tmpdir>` (and the kernel's cell file names by `<cell>`).

Why nbclient and not execnb (which `nbdev_test` uses): a real kernel per notebook, so the stored outputs are the ones a
JupyterLab or papermill user gets (inline backend, rich displays), nothing leaks from one notebook to the next, and a
cell that prints nothing any more loses its old output (execnb's `CaptureShell.cell` keeps it; it also renders figures
at retina size, twice the bytes). execnb-style skipping is kept by reading the directives with nbdev's own parser.

A code cell whose printed numbers legitimately change from run to run (timings, benchmarks) carries the directive
`#| varies`; `--check` skips it.
"""
from __future__ import annotations
import argparse, copy, math, os, re, sys, tempfile, time, warnings
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parent.parent
NBS = REPO / 'nbs'
# Run in the kernel before the first cell (not stored): PNG figures at a modest resolution (~30-100 KB each).
KERNEL_SETUP = """\
%config InlineBackend.figure_formats = ['png']
"""
VARIES = re.compile(r'\s*#\s*\|\s*varies\b')   # the `#| varies` directive


def library_notebooks() -> list[Path]:
    "The library notebooks in notebook order: nbs/[0-9]*.ipynb, then nbs/index.ipynb."
    return sorted(NBS.glob('[0-9]*.ipynb')) + [NBS / 'index.ipynb']


def _directives(path: Path) -> list[dict]:
    "nbdev's directives (`#| slow`, `#| eval: false`, ...) of each cell of `path`, parsed by nbdev itself."
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    with warnings.catch_warnings():   # nbdev warns about markdown it cannot read as YAML front matter
        warnings.simplefilter('ignore')
        nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    skip_all = str(getattr(nb, 'frontmatter_', {}).get('skip_exec', '')).lower() in ('true', '1', 'yes')
    return [{'eval:': ['false']} if skip_all else getattr(c, 'directives_', None) or {} for c in nb.cells]


def test_flags() -> set[str]:
    "The flags of settings.ini's `tst_flags` (cells behind them are skipped by `nbdev_test` unless asked for)."
    from nbdev.config import get_config
    return set(get_config(path=REPO).get('tst_flags', '').split())


def skipped_cells(path: Path, flags: set[str] = frozenset()) -> list[bool]:
    "Per cell: would `nbdev_test --flags FLAGS` skip it? Markdown cells count as skipped."
    nb = nbformat.read(path, as_version=4)
    dirs = _directives(path)
    if len(dirs) != len(nb.cells): raise RuntimeError(f"{path}: nbdev sees {len(dirs)} cells, nbformat {len(nb.cells)}.")
    skip_flags = test_flags() - set(flags)
    out = []
    for cell, d in zip(nb.cells, dirs):
        out.append(cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source
                   or d.get('eval:', [''])[0].lower() == 'false' or bool(skip_flags & d.keys()))
    return out


_TMP = re.escape(tempfile.gettempdir().rstrip('/'))
_SCRUB = [(re.compile(_TMP + r'/ipykernel_\d+/\d+\.py'), '<cell>'),   # where a warning in a cell came from
          (re.compile(_TMP + r'/tmp[\w-]+'), '<tmpdir>')]               # tempfile.TemporaryDirectory() names


def _scrub(text: str) -> str:
    "Text output without the names that change every run (temporary folders, the kernel's cell file names)."
    for pattern, name in _SCRUB: text = pattern.sub(name, text)
    return text


def _clean(nb):
    "What `nbdev_clean` would do to the executed notebook (no execution counts, object ids out of reprs, metadata)."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cfg, metadata = get_config(path=REPO), copy.deepcopy(nb.metadata)
    clean_nb(nb, False, cfg.get('allowed_metadata_keys', '').split(), cfg.get('allowed_cell_metadata_keys', '').split(),
             cfg.get('clean_ids', True))
    nb.metadata = metadata   # the notebook's own metadata stays as committed (kernelspec, language_info)
    for cell in nb.cells:
        for o in cell.get('outputs', []):
            if o.get('output_type') == 'stream': o['text'] = _scrub(''.join(o['text']))
            elif 'text/plain' in o.get('data', {}): o['data']['text/plain'] = _scrub(''.join(o['data']['text/plain']))
    return nb


def execute(path: Path, flags: set[str] = frozenset(), timeout: int = 1800, log=print):
    "Execute notebook `path` (from its folder, in a fresh kernel) and return it with outputs; raises on a failing cell."
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    skip = skipped_cells(path, flags)
    old_env = os.environ.copy()
    os.environ.update(TQDM_DISABLE='1', PYDEVD_DISABLE_FILE_VALIDATION='1', PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    try:
        client = NotebookClient(nb, timeout=timeout, startup_timeout=300, kernel_name='python3', record_timing=False, coalesce_streams=True,
                                extra_arguments=['--IPKernelApp.log_level=ERROR'],
                                resources={'metadata': {'path': str(path.parent)}})
        with client.setup_kernel():
            nb.cells.insert(0, nbformat.v4.new_code_cell(KERNEL_SETUP))   # nbclient writes a cell back at its index
            try: client.execute_cell(nb.cells[0], 0, store_history=False)
            finally: nb.cells.pop(0)
            for i, cell in enumerate(nb.cells):
                if skip[i]: continue
                t = time.time()
                client.execute_cell(cell, i)
                if time.time() - t > 20: log(f"  {path.name} cell {i} ({cell.get('id')}): {time.time() - t:.0f} s")
    finally:
        os.environ.clear(); os.environ.update(old_env)
    return _clean(nb)


# ---- comparing outputs -------------------------------------------------------------------------------------------
_NUM = re.compile(r'(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')


def _text(cell) -> str:
    "The text a reader sees under a code cell: stdout and the plain-text results (stderr and images left out)."
    parts = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream' and o.get('name') == 'stdout': parts.append(''.join(o.get('text', '')))
        elif o.get('output_type') in ('execute_result', 'display_data'): parts.append(''.join(o.get('data', {}).get('text/plain', '')))
    return '\n'.join(parts)


def numbers(cell) -> list[tuple[float, float]]:
    "The numbers printed under a code cell, each with the unit of its last printed digit (0 for integers)."
    return [(float(m), 10.0 ** -len(m.split('.')[1].split('e')[0].split('E')[0]) if '.' in m else 0.0)
            for m in _NUM.findall(_text(cell))]


def varies(cell) -> bool:
    "Does the cell carry the `#| varies` directive (its printed numbers change from run to run)?"
    return any(VARIES.match(l) for l in cell.source.splitlines())


def _kinds(cell) -> list[str]:
    "What a cell shows (stdout, stderr, error, and the MIME types of rich outputs), in order."
    return [o.get('name') or o.get('output_type') if o.get('output_type') in ('stream', 'error')
            else '+'.join(sorted(o.get('data', {}))) for o in cell.get('outputs', [])]


def has_outputs(nb) -> bool:
    return any(c.get('outputs') for c in nb.cells if c.cell_type == 'code')


def compare(committed, fresh, skip: list[bool], rtol: float = 1e-3) -> list[str]:
    """Differences between the numbers printed by the executed cells of two versions of a notebook (empty: they agree).
    Two numbers agree within `rtol` relative, or within one unit of their last printed digit (a rounding flip)."""
    problems = []
    if len(committed.cells) != len(fresh.cells):
        return [f"the committed notebook has {len(committed.cells)} cells, the fresh run {len(fresh.cells)}"]
    for i, (a, b) in enumerate(zip(committed.cells, fresh.cells)):
        if skip[i] or a.cell_type != 'code' or varies(b): continue
        na, nb_ = numbers(a), numbers(b)
        where = f"cell {i} ({b.get('id')}: `{b.source.splitlines()[0][:60] if b.source else ''}`)"
        if _kinds(a) != _kinds(b):
            problems.append(f"{where}: the committed outputs are {_kinds(a)}, a fresh run gives {_kinds(b)}")
        if len(na) != len(nb_):
            problems.append(f"{where}: the committed output has {len(na)} numbers, a fresh run prints {len(nb_)}:\n"
                            f"  committed: {_text(a)[:300]!r}\n  fresh:     {_text(b)[:300]!r}")
            continue
        bad = [(x, y) for (x, ux), (y, uy) in zip(na, nb_)
               if not (math.isclose(x, y, rel_tol=rtol) or abs(x - y) <= 1.01 * max(ux, uy))]
        if bad: problems.append(f"{where}: committed vs fresh numbers differ: {bad[:5]}")
    return problems


def check(path: Path, rtol: float = 1e-3, log=print) -> list[str]:
    "Re-execute `path` in memory and compare its printed numbers with the committed outputs."
    path = Path(path).resolve()
    rel = path.relative_to(REPO)
    committed = nbformat.read(path, as_version=4)
    if not has_outputs(committed): return [f"{rel} has no committed outputs: run `make notebooks`"]
    fresh = execute(path, log=log)
    return [f"{rel}: {p}" for p in compare(committed, fresh, skipped_cells(path), rtol)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n\n', 1)[1])
    ap.add_argument('notebooks', nargs='*', type=Path, help='notebooks to run (default: every library notebook)')
    ap.add_argument('--flags', default='', help="space-separated test flags to run too (e.g. 'slow'), as `nbdev_test --flags`")
    ap.add_argument('--check', action='store_true', help='do not write: re-execute and compare printed numbers with the committed outputs')
    ap.add_argument('--timeout', type=int, default=1800, help='seconds a single cell may run (default 1800)')
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or library_notebooks()
    failed, start = [], time.time()
    for path in paths:
        t = time.time()
        rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        try:
            if args.check:
                problems = check(path)
                if problems: failed.append(rel); print('\n'.join(problems), file=sys.stderr)
            else:
                nb = execute(path, set(args.flags.split()), args.timeout)
                nbformat.write(nb, path)
        except CellExecutionError as e:
            failed.append(rel); print(f"{rel}: a cell failed, the notebook was left as it was:\n{e}", file=sys.stderr)
        print(f"{rel}: {'FAILED' if rel in failed else 'ok'} in {time.time() - t:.0f} s", flush=True)
    print(f"{len(paths) - len(failed)}/{len(paths)} notebooks ok in {time.time() - start:.0f} s")
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
