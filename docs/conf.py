# Sphinx configuration of the documentation site (`make docs`): docs/build.py stages the notebooks beside this file's
# settings and runs sphinx-build; nothing here reaches the network (MathJax is served from the site itself).
import inspect, os, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))   # autodoc documents this checkout's triplet_ssl

project = 'triplet-ssl'
author = 'triplet-ssl developers'
copyright = '2026 onwards, triplet-ssl developers'
extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.mathjax']
exclude_patterns = ['_build', '**.ipynb_checkpoints']

# Notebooks are shown as committed: their outputs are the results (nothing is executed while building).
nb_execution_mode = 'off'
nb_merge_streams = True
nb_render_markdown_format = 'myst'   # markdown outputs (the README's generated tables) render as MyST: tables included
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
suppress_warnings = ['myst.header', 'misc.highlighting_failure']

# Signatures and docstrings of each module's exported names (its __all__), as nbdev's show_doc shows them.
autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_preserve_defaults = True
default_role = 'code'   # docstrings write `name` for code, as nbdev's do

html_theme = 'furo'
html_title = 'triplet-ssl'
html_static_path = [str(Path(os.environ.get('TRIPLET_SSL_DOCS_STAGE', REPO / '_build' / 'docs_src')) / '_static')]   # docs/build.py writes it
# MathJax 3 from the django-static-mathjax package (a plain copy of MathJax's release, no Django needed), copied into the
# site by docs/build.py: math renders offline, with MathJax's own web fonts.
mathjax_path = 'mathjax/tex-chtml.js'
html_show_sourcelink = False


def _parameter_table(what, obj) -> list[str]:
    "Like nbdev's show_doc: a table of the parameters that carry a comment (fastcore docments), with type and default."
    if what not in ('class', 'function', 'method'): return []
    from triplet_ssl.cli import params_of, show_value
    try: params = params_of(obj)
    except Exception: return []   # no source or signature to read (builtins, C extensions)
    if not any(p['doc'] for p in params): return []
    esc = lambda t: t.replace('*', r'\*')
    lit = lambda t: f'``{t.strip()}``' if t.strip() else ''
    rows = [f"   * - {lit(p['name'])}\n     - {lit(p['type'])}\n     - {lit(show_value(p['default']) if p['default'] is not _EMPTY else '')}\n"
            f"     - {esc(p['doc'])}" for p in params]
    return ['', '.. list-table::', '   :header-rows: 1', '', '   * - parameter', '     - type', '     - default', '     - description',
            *'\n'.join(rows).splitlines()]


def _markdown_code(app, what, name, obj, options, lines):
    "nbdev docstrings are markdown: `x` is code, also when a letter follows (`transform`s), which reStructuredText would refuse."
    import re
    lines += _parameter_table(what, obj)
    code = re.compile(r'(?<!`)`([^`\n]+)`(?!`)(\w?)')
    lines[:] = [code.sub(lambda m: f'``{m[1]}``' + (f'\\ {m[2]}' if m[2] else ''), line) for line in lines]


def setup(app): app.connect('autodoc-process-docstring', _markdown_code)


_EMPTY = inspect.Parameter.empty
