"""The documentation site (`make docs`), built from the notebooks as committed and opened in headless Chromium: every page
loads without a console error or a request that leaves the site, every internal link resolves, math is rendered (offline),
figures are inline, and the API reference shows the exported functions' signatures and docstrings."""
import html.parser, json, os, re, sys
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest

from helpers import CHROMIUM, REPO
sys.path.insert(0, str(REPO / 'docs'))
import build as docs   # docs/build.py

# The notebooks to build from: this checkout's, as committed; TRIPLET_SSL_DOCS_REPO=/a/copy checks a copy (e.g. executed ones).
SOURCE = Path(os.environ.get('TRIPLET_SSL_DOCS_REPO', REPO))


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('docs')
    pages = docs.build(tmp / '_docs', strict=True, repo=SOURCE, stage_dir=tmp / 'src')
    return tmp / '_docs', pages


@pytest.fixture(scope='module')
def browser():
    if CHROMIUM is None:
        pytest.skip("No Chromium: the browser checks of the documentation site need Debian's `chromium` package "
                    "(`make test` installs it with apt-get where it runs as root; or set CHROMIUM=/path/to/chromium).")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def open_page(browser, path: Path):
    "Load a page of the site; returns the page and what went wrong (console errors, page errors, failed or outside requests)."
    page, problems = browser.new_page(), []
    page.on('console', lambda m: problems.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    page.on('requestfailed', lambda r: problems.append(f'failed request: {r.url}'))
    page.route(re.compile(r'^(?!file:|data:|about:blank)'), lambda route: (problems.append(f'request outside the site: {route.request.url}'),
                                                                            route.abort()))
    page.goto(path.as_uri(), wait_until='load')
    if page.evaluate("() => !!document.querySelector('.math')"):   # MathJax typesets after load
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        page.evaluate("() => MathJax.startup.promise")
    return page, problems


def test_one_page_per_notebook_in_notebook_order(site):
    out, pages = site
    lib, experiments = docs.notebooks(SOURCE)
    assert pages[:1 + len(lib) + len(experiments)] == ['index', *[f'nbs/{p.stem}' for p in lib],
                                                      *[f'nbs/experiments/{p.stem}' for p in experiments]]
    assert [p.name for p in lib][:2] == ['00_losses.ipynb', '01_data.ipynb'] and experiments[0].stem == 'pretrain'
    for page in pages: assert (out / f'{page}.html').is_file(), page
    # the sidebar lists them in that order
    sidebar = re.findall(r'class="reference internal" href="([^"#]+)\.html"', (out / 'index.html').read_text().split('sidebar-tree')[1])
    assert [s for s in sidebar if s != 'index'][:len(pages) - 1] == pages[1:], sidebar


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.refs, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        for key in ('href', 'src'):
            if a.get(key) and not (tag == 'a' and a.get(key).startswith(('http://', 'https://', 'mailto:'))): self.refs.append(a[key])


def parse(path: Path) -> Links:
    p = Links(); p.feed(path.read_text(encoding='utf-8')); return p


def test_internal_links_resolve(site):
    out, pages = site
    parsed, broken = {}, []
    for page in sorted(out.rglob('*.html')):
        for ref in parse(page).refs:
            url = urlsplit(ref)
            assert not url.scheme or url.scheme == 'data', f'{page.relative_to(out)} loads {ref} from outside the site'
            if url.scheme: continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if not target.exists(): broken.append(f'{page.relative_to(out)} -> {ref}'); continue
            if url.fragment and target.suffix == '.html':
                if target not in parsed: parsed[target] = parse(target).ids
                ids = parsed[target]
                if url.fragment not in ids: broken.append(f'{page.relative_to(out)} -> {ref} (no such anchor)')
    assert not broken, broken[:20]


def test_every_page_loads_without_errors_and_shows_its_figures(site, browser):
    out, pages = site
    notebooks = {str(nb.relative_to(SOURCE).with_suffix('')): nb for nb in sum(docs.notebooks(SOURCE), [])}
    for name in pages:
        page, problems = open_page(browser, out / f'{name}.html')
        assert not problems, (name, problems)
        assert page.evaluate("() => document.querySelectorAll('mjx-merror, .math .error').length") == 0, f'{name}: a math error'
        if name in notebooks:   # each figure a notebook carries as an output is an image on its page
            assert page.locator('article .cell_output img').count() == image_outputs(notebooks[name]), name
        page.close()


def test_index_speaks_of_the_truncated_triplet_loss(site, browser):
    out, _ = site
    page, _ = open_page(browser, out / 'index.html')
    text = page.inner_text('article')
    assert re.search(r'truncated \(?(median\)? )?triplet loss', text, re.I), text[:500]
    loaded = page.evaluate("() => [...document.querySelectorAll('article img')].map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded), loaded   # the README's figures (figures/*.png), copied into the site


def test_losses_page_renders_math(site, browser):
    out, _ = site
    page, problems = open_page(browser, out / 'nbs' / '00_losses.html')
    assert not problems
    assert page.locator('article mjx-container').count() >= 10, 'the equations are typeset by MathJax'
    display = page.locator('article mjx-container[display="true"]').first
    assert display.bounding_box()['height'] > 15, 'a displayed equation is drawn'
    assert '\\hat' not in page.inner_text('article'), 'no TeX source left on the page'


def image_outputs(nb: Path) -> int:
    return sum('image/png' in o.get('data', {}) or 'image/svg+xml' in o.get('data', {})
               for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))


def test_losses_page_shows_its_figure(site):
    losses = SOURCE / 'nbs' / '00_losses.ipynb'
    if not any(c.get('outputs') for c in json.loads(losses.read_text())['cells']):
        pytest.skip('nbs/00_losses.ipynb is committed without outputs, so its page has no figure yet (issue 11, item 1)')
    assert image_outputs(losses) >= 1, 'the losses notebook shows a figure'
    assert '<img' in (site[0] / 'nbs' / '00_losses.html').read_text().split('cell_output', 1)[-1]


def test_api_reference(site, browser):
    out, _ = site
    page, _ = open_page(browser, out / 'api' / 'losses.html')
    sig = page.locator('dt[id="triplet_ssl.losses.truncated_triplet_loss"]')
    assert re.search(r'truncated_triplet_loss\(pred.*\*, deputy, gamma: float = 2\.0, margin: float = 100\.0', sig.inner_text().replace('\n', ' '))
    assert 'Mean over rows of max(0' in page.inner_text('article')   # its docstring
    page.close()
    page, _ = open_page(browser, out / 'api' / 'config.html')
    table = page.locator('dt[id="triplet_ssl.config.Config"] + dd table')   # show_doc's table: the comments beside Config's fields
    assert re.search(r'deputy\s+any\s+\[2, 10\]\s+.median., .hardest.', table.inner_text())
    page.close()


# The entry points a reader looks up first, and every exported name of every module: each one's API entry has a table
# describing every parameter (fastcore docments: a comment beside each parameter in the signature).
ENTRY_POINTS = ['losses.truncated_triplet_loss', 'config.Config', 'config.load_config', 'train.train', 'train.run',
                'linear.EvalConfig', 'linear.load_eval_config', 'linear.evaluate_checkpoint', 'linear.linear_eval', 'linear.finetune',
                'linear.linear_eval_features', 'evaluate.knn_evaluate', 'reid.evaluate_sysu30k', 'reid.reid_metrics',
                'reid.extract_reid_features', 'interop.load_backbone', 'interop.export_torchvision', 'interop.export_detectron2',
                'interop.init_from_checkpoint']
COMPLETE_MODULES = sorted(p.stem for p in (REPO / 'triplet_ssl').glob('*.py') if not p.stem.startswith('_'))


def documented_names(module: str) -> list[str]:
    "The exported functions and classes of `module` that take parameters (a class inheriting torch's __init__ is torch's to document)."
    import dataclasses, importlib, inspect
    from triplet_ssl.cli import params_of
    mod = importlib.import_module(f'triplet_ssl.{module}')
    objs = {n: getattr(mod, n) for n in mod.__all__}
    return [f'{module}.{n}' for n, o in objs.items() if (inspect.isfunction(o) or (inspect.isclass(o) and (
        '__init__' in vars(o) or dataclasses.is_dataclass(o)))) and params_of(o)]


def parameter_table(page_html: str, name: str) -> list[list[str]]:
    "The rows (cell texts) of the parameter table right under `name`'s signature on an API page."
    start = page_html.index(f'id="triplet_ssl.{name}"')
    nxt = page_html.find('<dt class="sig', start + 1)   # the next documented name: the table must come before it
    entry = page_html[start:nxt if nxt > 0 else None]
    table = re.search(r'<table.*?</table>', entry, re.S)
    assert table, f'{name}: no parameter table'
    text = lambda cell: ' '.join(re.sub(r'<[^>]+>', ' ', cell).split())
    return [[text(c) for c in re.findall(r'<t[dh][^>]*>(.*?)</t[dh]>', row, re.S)] for row in re.findall(r'<tr.*?</tr>', table[0], re.S)]


def check_parameter_table(out: Path, name: str):
    import importlib
    from triplet_ssl.cli import params_of
    module, attr = name.split('.')
    rows = parameter_table((out / 'api' / f'{module}.html').read_text(), name)
    assert rows[0] == ['parameter', 'type', 'default', 'description'], rows[0]
    described = {r[0]: r[3] for r in rows[1:]}
    assert list(described) == [p['name'] for p in params_of(getattr(importlib.import_module(f'triplet_ssl.{module}'), attr))]
    assert all(described.values()), (name, [k for k, v in described.items() if not v])
    assert not [r for r in rows[1:] if 'DefaultValue' in r[1]], (name, 'a type read from a default Sphinx kept as source text')


@pytest.mark.parametrize('name', ENTRY_POINTS)
def test_entry_points_have_a_parameter_table(site, name): check_parameter_table(site[0], name)


@pytest.mark.parametrize('module', COMPLETE_MODULES)
def test_every_name_of_these_modules_has_a_parameter_table(site, module):
    names = documented_names(module)
    assert names, module
    for name in names: check_parameter_table(site[0], name)
