"""Commit an executed experiment notebook as the page a reader sees: `python tools/record_experiment.py runs/demo/pretrain.ipynb`.

Copies the outputs of a papermill execution (`papermill nbs/experiments/NAME.ipynb OUT/NAME.ipynb --log-output ...`) into
`nbs/experiments/NAME.ipynb`, code cell by code cell, after checking that every code cell is the committed one (the
outputs must come from the code a reader sees). Progress bars are kept as a terminal would leave them (the text after each line's
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
    """The committed notebook `target` with the outputs of `executed`, cleaned. Its code cells must be the committed ones
    (ValueError otherwise); markdown is the committed notebook's (it does not change what the code printed)."""
    run, src = json.loads(executed.read_text()), json.loads(target.read_text())
    code = lambda nb: [c for c in nb['cells'] if c['cell_type'] == 'code' and 'injected-parameters' not in c.get('metadata', {}).get('tags', [])]
    ran, mine = code(run), code(src)
    if [''.join(c['source']) for c in ran] != [''.join(c['source']) for c in mine]:
        diff = next((i for i, (a, b) in enumerate(zip(ran, mine)) if a['source'] != b['source']), min(len(ran), len(mine)))
        raise ValueError(f"{executed} was executed from other code than {target} (first difference: code cell {diff}): "
                         f"execute the committed notebook again.")
    out = copy.deepcopy(src)
    for cell, theirs in zip(code(out), ran): cell['outputs'] = merged_streams(theirs.get('outputs', []))
    return clean(out)


def merged_streams(outputs: list) -> list:
    "`outputs` with consecutive writes to the same stream joined, each as a terminal would leave it (see `terminal_text`)."
    merged = []
    for o in copy.deepcopy(outputs):
        if o.get('output_type') == 'stream' and merged and merged[-1].get('output_type') == 'stream' and merged[-1]['name'] == o['name']:
            merged[-1]['text'] += ''.join(o['text'])
        else:
            if o.get('output_type') == 'stream': o['text'] = ''.join(o['text'])
            merged.append(o)
    for o in merged:   # as lines, the way Jupyter writes them (a save in JupyterLab leaves them as they are)
        if o.get('output_type') == 'stream': o['text'] = terminal_text(o['text']).splitlines(keepends=True)
    return [o for o in merged if o.get('output_type') != 'stream' or ''.join(o['text']).strip()]   # a progress bar that cleared itself


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
