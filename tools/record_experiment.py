"""Commit an executed experiment notebook as the page a reader sees: `python tools/record_experiment.py runs/demo/pretrain.ipynb`.

Copies the outputs of a papermill execution (`papermill nbs/experiments/NAME.ipynb OUT/NAME.ipynb --log-output ...`) into
`nbs/experiments/NAME.ipynb`, cell by cell, after checking that every cell's source is the committed one (the outputs
must come from the code a reader sees). Progress bars are kept as a terminal would leave them (the text after each line's
last carriage return), papermill's injected-parameters cell is left out (the notebook's closing cell prints the command,
date and wall time of the execution) and the result is in nbdev_clean's form, outputs kept, so `nbdev_clean` changes
nothing (tests/test_notebook_clean.py).
"""
import argparse, copy, json, re, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def terminal_text(text: str) -> str:
    "What a terminal shows of `text`: each line from its last carriage return on (progress bars redraw with '\\r')."
    return '\n'.join(line.rstrip('\r').rsplit('\r', 1)[-1] for line in text.split('\n'))


def clean(nb: dict, repo: Path = REPO) -> dict:
    "`nb` in nbdev_clean's form (this repository's settings.ini; outputs kept unless clear_all)."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cfg = get_config(path=repo)
    nb = copy.deepcopy(nb)
    clean_nb(nb, cfg.clear_all, cfg.get('allowed_metadata_keys').split(), cfg.get('allowed_cell_metadata_keys').split(), cfg.clean_ids)
    return nb


def nb_text(nb: dict) -> str:
    "The file text nbdev writes for `nb` (execnb's format: keys sorted, indent 1, a final newline)."
    from execnb.nbio import nb2str
    return nb2str(nb)


def record(executed: Path, target: Path) -> dict:
    "The committed notebook `target` with the outputs of `executed`, cleaned; raises ValueError if their code differs."
    run, src = json.loads(executed.read_text()), json.loads(target.read_text())
    cells = [c for c in run['cells'] if 'injected-parameters' not in c.get('metadata', {}).get('tags', [])]
    code = lambda c: (c['cell_type'], ''.join(c['source']))
    if [code(c) for c in cells] != [code(c) for c in src['cells']]:
        diff = next(i for i, (a, b) in enumerate(zip(cells + [None] * 999, src['cells'] + [None] * 999)) if a is None or b is None or code(a) != code(b))
        raise ValueError(f"{executed} was executed from other code than {target} (first difference: cell {diff}): "
                         f"execute the committed notebook again.")
    out = copy.deepcopy(src)
    for mine, theirs in zip(out['cells'], cells):
        if mine['cell_type'] != 'code': continue
        mine['outputs'] = copy.deepcopy(theirs.get('outputs', []))
        for o in mine['outputs']:
            if o.get('output_type') == 'stream': o['text'] = terminal_text(''.join(o['text']))
    return clean(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('executed', type=Path, help='a papermill output of one of nbs/experiments/*.ipynb')
    p.add_argument('--name', help='the experiment notebook (default: the executed file name without -N, e.g. pretrain-2 -> pretrain)')
    args = p.parse_args(argv)
    name = args.name or re.sub(r'-\d+$', '', args.executed.stem)
    target = REPO / 'nbs' / 'experiments' / f'{name}.ipynb'
    if not args.executed.is_file(): sys.exit(f"error: {args.executed} does not exist: pass an executed notebook (papermill's output).")
    if not target.is_file(): sys.exit(f"error: no experiment notebook {target.relative_to(REPO)}: pass --name NAME.")
    try: nb = record(args.executed, target)
    except ValueError as e: sys.exit(f"error: {e}")
    target.write_text(nb_text(nb))
    print(f"{target.relative_to(REPO)}: outputs of {args.executed}")


if __name__ == '__main__': main()
