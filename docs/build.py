"""Build the documentation site in `_docs/` from the notebooks, as committed (`make docs`).

The notebooks are staged in `_build/docs_src/` with the repository's layout (so links written for the README, such as
`figures/x.png`, resolve): `nbs/index.ipynb` becomes the home page, then one page per library notebook and per
experiment notebook, in notebook order, and one API page per module. nbdev's cell directives become MyST-NB tags
(`#| hide` cells are left out). Sphinx with MyST-NB renders them with the outputs they carry: nothing is executed.
MathJax comes from the django-static-mathjax package and is copied into the site, so math renders offline.
"""
import argparse, json, os, re, shutil, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAGE = REPO / '_build' / 'docs_src'
# Experiments in the order a reader runs them; any other experiment notebook follows, by name.
EXPERIMENTS = ['pretrain', 'linear_eval', 'semi_supervised', 'learning_efficiency', 'paper_figures', 'detection', 'reid']
DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def notebooks(repo: Path = REPO) -> tuple[list[Path], list[Path]]:
    "The library notebooks (by file name, which is notebook order) and the experiment notebooks (in reading order)."
    lib = sorted(p for p in (repo / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
    rank = lambda p: (EXPERIMENTS.index(p.stem) if p.stem in EXPERIMENTS else len(EXPERIMENTS), p.stem)
    return lib, sorted((repo / 'nbs' / 'experiments').glob('*.ipynb'), key=rank)


def directives(cell: dict) -> tuple[dict, str]:
    "A code cell's leading nbdev directives (`#| name: value`) and the source without them."
    lines, found = ''.join(cell['source']).splitlines(keepends=True), {}
    while lines and (m := DIRECTIVE.match(lines[0])): found[m[1]] = m[2]; lines.pop(0)
    return found, ''.join(lines)


def for_docs(nb: dict) -> dict:
    "The notebook as the site shows it: `hide`/`default_exp` cells left out, `echo: false` and `output: false` as MyST-NB tags."
    cells = []
    for c in nb['cells']:
        if c['cell_type'] == 'code':
            found, src = directives(c)
            if 'hide' in found or 'default_exp' in found: continue
            tags = set(c['metadata'].get('tags', []))
            if found.get('echo') == 'false': tags.add('remove-input')
            if found.get('output') == 'false': tags.add('remove-output')
            c = {**c, 'source': src, 'metadata': {**c['metadata'], 'tags': sorted(tags)}}
        cells.append(c)
    return {**nb, 'cells': cells}


def module_of(nb: dict) -> str | None:
    "The module a library notebook exports to (its `#| default_exp`)."
    for c in nb['cells']:
        if c['cell_type'] == 'code' and 'default_exp' in (found := directives(c)[0]): return found['default_exp'].split()[0]
    return None


def markdown_cell(text: str, id: str) -> dict: return dict(cell_type='markdown', id=id, metadata={}, source=text)


def toctree(caption: str, docs: list[str]) -> str:
    return '```{toctree}\n:maxdepth: 1\n:caption: ' + caption + '\n\n' + '\n'.join(docs) + '\n```\n'


def stage(repo: Path = REPO, stage_dir: Path = STAGE) -> list[str]:
    "Write the Sphinx sources into `stage_dir`; returns the pages in order."
    import mathjax   # django-static-mathjax: MathJax's release files
    shutil.rmtree(stage_dir, ignore_errors=True)
    (stage_dir / 'api').mkdir(parents=True)
    es5 = Path(mathjax.__file__).parent / 'static' / 'mathjax' / 'es5'   # the combined tex-chtml.js and what it loads on demand
    shutil.copytree(es5, stage_dir / '_static' / 'mathjax',
                    ignore=lambda d, names: [n for n in names if Path(d) == es5 and n.endswith('.js') and n != 'tex-chtml.js'])
    if (repo / 'figures').is_dir():   # the images only: figures/*.md are tables the notebooks write, not pages
        shutil.copytree(repo / 'figures', stage_dir / 'figures', ignore=lambda d, names: [n for n in names if n.endswith('.md')])
    write = lambda rel, nb: (stage_dir / rel).parent.mkdir(parents=True, exist_ok=True) or \
        (stage_dir / rel).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    lib, experiments = notebooks(repo)
    lib_pages, exp_pages, api_pages = [], [], []
    for path in lib:
        nb = json.loads(path.read_text())
        module = module_of(nb)
        if module:
            nb['cells'].append(markdown_cell(f"The exported functions and classes of this notebook, with their signatures and docstrings: "
                                             f"[`triplet_ssl.{module}`](../api/{module}.rst).", 'api-link'))
            title = f"``triplet_ssl.{module}``"
            (stage_dir / 'api' / f'{module}.rst').write_text(
                f"{title}\n{'=' * len(title)}\n\nFrom :doc:`../nbs/{path.stem}`.\n\n.. automodule:: triplet_ssl.{module}\n")
            api_pages.append(f'api/{module}')
        write(f'nbs/{path.name}', for_docs(nb)); lib_pages.append(f'nbs/{path.stem}')
    for path in experiments:
        write(f'nbs/experiments/{path.name}', for_docs(json.loads(path.read_text()))); exp_pages.append(f'nbs/experiments/{path.stem}')
    index = for_docs(json.loads((repo / 'nbs' / 'index.ipynb').read_text()))
    index['cells'].append(markdown_cell('## Contents\n\n' + toctree('Library notebooks', lib_pages) + '\n'
                                        + toctree('Experiment notebooks', exp_pages) + '\n' + toctree('API reference', api_pages), 'contents'))
    write('index.ipynb', index)
    return ['index', *lib_pages, *exp_pages, *api_pages]


def build(out: Path = REPO / '_docs', strict: bool = False, repo: Path = REPO, stage_dir: Path = STAGE) -> list[str]:
    "Stage `repo`'s notebooks in `stage_dir` and run Sphinx into `out`; returns the pages in order."
    pages = stage(repo, stage_dir)
    html = stage_dir.parent / 'html'   # MyST-NB writes beside Sphinx's output folder: keep that inside _build/
    shutil.rmtree(html, ignore_errors=True)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-c', str(REPO / 'docs'), '-d', str(stage_dir.parent / 'doctrees'),
           str(stage_dir), str(html), *(['-W', '--keep-going'] if strict else [])]
    subprocess.run(cmd, check=True, cwd=repo, env={**os.environ, 'TRIPLET_SSL_DOCS_STAGE': str(stage_dir)})
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(html, out)
    return pages


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(REPO / '_docs'), help='the site folder (default: _docs/)')
    p.add_argument('--strict', action='store_true', help="fail on any Sphinx warning (CI's setting)")
    a = p.parse_args()
    try: pages = build(Path(a.out), a.strict)
    except subprocess.CalledProcessError as e: raise SystemExit(f"error: sphinx-build failed (exit {e.returncode}); see its messages above.")
    print(f"{len(pages)} pages in {a.out}/ — open {a.out}/index.html in a browser")
