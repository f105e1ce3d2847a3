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
