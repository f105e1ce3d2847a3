"""The shape of the house, checked: notebooks numbered without letters and importing only lower-numbered ones, modules
of a few hundred lines, the trainer in short steps, one `torch.load`, test helpers defined once, the README's code map
naming every library notebook. (Issue 12: what a new maintainer relies on when reading the code in order.)"""
import ast, json, re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / 'triplet_ssl'
MAX_MODULE_LINES = 440        # "a module that passes a few hundred lines is two ideas" (style.md); runs.py 435 (the run record, trackers, clean exit): the next to split
MAX_TRAIN_FUNCTION_LINES = 60  # each step of the trainer readable on one screen


def library_notebooks() -> list[Path]:
    return sorted(p for p in (REPO / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb')


def code_of(nb: Path) -> str:
    return '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')


def module_of(nb: Path) -> str | None:
    m = re.search(r'#\|\s*default_exp\s+(\S+)', code_of(nb))
    return m.group(1) if m else None


def test_notebooks_are_numbered_without_letters_one_module_each():
    names = [p.name for p in library_notebooks()]
    bad = [n for n in names if not re.fullmatch(r'\d\d_[a-z0-9_]+\.ipynb', n)]
    assert not bad, f"library notebooks must be NN_name.ipynb (no letters in the number): {bad}"
    numbers = [n[:2] for n in names]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {sorted(numbers)}"
    modules = [module_of(p) for p in library_notebooks()]
    assert None not in modules, f"a library notebook without #| default_exp: {[n for n, m in zip(names, modules) if m is None]}"
    assert len(set(modules)) == len(modules), f"two notebooks export the same module: {modules}"
    exported = {p.stem for p in PACKAGE.glob('*.py')} - {'__init__', '_modidx'}
    assert exported == set(modules), f"modules without a notebook or notebooks without a module: {exported ^ set(modules)}"


def backward_imports(notebooks: list[Path]) -> list[str]:
    "Each use, in a notebook's code (lazy imports and tests included), of a module exported by a later notebook."
    order = {module_of(p): i for i, p in enumerate(notebooks)}
    found = []
    for i, nb in enumerate(notebooks):
        code = code_of(nb)
        used = set(re.findall(r'\btriplet_ssl\.(\w+)', code)) | set(re.findall(r'^\s*from \.(\w+) import', code, re.M))
        found += [f"{nb.name} uses {u} ({notebooks[order[u]].name})" for u in sorted(used) if order.get(u, -1) > i]
    return found


def test_no_notebook_imports_a_later_one():
    later = backward_imports(library_notebooks())
    assert not later, "a notebook may import only lower-numbered ones:\n" + '\n'.join(later)


def test_backward_import_scan_finds_one(tmp_path):
    "The scan above is not vacuous: a lower notebook's lazy import of a higher one's module is found."
    def write(name, *cells):
        nb = dict(cells=[dict(cell_type='code', source=c, metadata={}, outputs=[], execution_count=None) for c in cells],
                  metadata={}, nbformat=4, nbformat_minor=5)
        (tmp_path / name).write_text(json.dumps(nb))
    write('00_a.ipynb', '#| default_exp a', 'def f():\n    from triplet_ssl.b import g\n    return g')
    write('01_b.ipynb', '#| default_exp b', 'from triplet_ssl.a import f')
    assert backward_imports(sorted(tmp_path.glob('*.ipynb'))) == ['00_a.ipynb uses b (01_b.ipynb)']


def module_lines(path: Path) -> int:
    "Lines of a module, each signature counted as one line (docments lay the parameters out one a line, each with its comment)."
    text = path.read_text()
    spread = sum(n.body[0].lineno - n.lineno - 1 for n in ast.walk(ast.parse(text))
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.body[0].lineno > n.lineno + 1)
    return len(text.splitlines()) - spread


def test_modules_stay_small():
    long = {p.name: n for p in PACKAGE.glob('*.py') if p.name != '_modidx.py' and (n := module_lines(p)) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


def test_trainer_functions_fit_on_a_screen():
    tree = ast.parse((PACKAGE / 'train.py').read_text())
    long = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_TRAIN_FUNCTION_LINES}
    assert not long, f"train.py functions over {MAX_TRAIN_FUNCTION_LINES} lines: {long}"


def test_one_checkpoint_reader():
    "Every checkpoint is read by runs.read_checkpoint (weights_only, verified, one error vocabulary): one call of torch.load."
    calls = [f"{p.name}:{n.lineno}" for p in PACKAGE.glob('*.py') if p.name != '_modidx.py' for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == 'load'
             and isinstance(n.func.value, ast.Name) and n.func.value.id == 'torch']
    assert len(calls) == 1 and calls[0].startswith('runs.py:'), f"torch.load is called at {calls}; read through runs.read_checkpoint"


def test_test_helpers_are_defined_once():
    "REPO, TINY and the subprocess runner live in tests/conftest.py or tests/helpers.py, not copied into test files."
    copies = []
    for p in sorted((REPO / 'tests').glob('test_*.py')):
        if p.name == 'test_layout.py': continue
        for node in ast.parse(p.read_text()).body:
            names = ([t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign)
                     else [node.name] if isinstance(node, ast.FunctionDef) else [])
            copies += [f"{p.name}: {n}" for n in names if n in ('REPO', 'TINY', 'run')]
    assert not copies, f"shared test helpers redefined: {copies}"


def package_imports(module: str) -> set[str]:
    "The package's modules that `module` imports (at the top or lazily), from its source."
    used = set()
    for n in ast.walk(ast.parse((PACKAGE / f'{module}.py').read_text())):
        if isinstance(n, ast.ImportFrom):
            if n.level == 1: used |= {n.module} if n.module else {a.name for a in n.names}
            elif n.module == 'triplet_ssl': used |= {a.name for a in n.names}
            elif n.module and n.module.startswith('triplet_ssl.'): used.add(n.module.split('.')[1])
    return used - {module, '__version__'}


def test_readme_code_map_is_true():
    "README's map (notebook | module | what it owns | imports) lists every library notebook, and each row's imports are the real ones."
    rows = {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r'^\| `(\d\d_\w+)` \| `(\w+)` \| [^|]+ \| ([^|]+) \|$', (REPO / 'README.md').read_text(), re.M)}
    notebooks = {p.stem: module_of(p) for p in library_notebooks()}
    assert set(rows) == set(notebooks), f"README's code map differs from nbs/: {set(rows) ^ set(notebooks)} (edit nbs/index.ipynb, `make readme`)"
    wrong = {}
    for stem, (module, imports) in rows.items():
        listed = set() if imports.strip() == '—' else {i.strip() for i in imports.split(',')}
        if module != notebooks[stem] or listed != package_imports(module): wrong[stem] = (module, sorted(listed), sorted(package_imports(module)))
    assert not wrong, f"README's code map is out of date (row: module, listed imports, real imports): {wrong}"
