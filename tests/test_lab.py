"""JupyterLab as `make lab` starts it (with --allow-root when run as root): the server lists nbs/ through its REST API, a
kernel it starts runs the first cells of 00_losses.ipynb, and the notebook's page opens in headless Chromium. The test
stops the server it started, by its PID, whatever happens."""
import json, os, secrets, signal, socket, subprocess, time, urllib.request
import pytest

from helpers import BIN, CHROMIUM, REPO
ROOT = os.getuid() == 0


def test_make_lab_adds_allow_root_only_as_root():
    r = subprocess.run(['make', '-n', '-s', 'lab', f'VENV={BIN.parent}'], cwd=REPO, capture_output=True, text=True, timeout=60)
    line = next(l for l in r.stdout.splitlines() if 'jupyter lab' in l)
    assert line.startswith('cd nbs && ') and 'pre_save_hook=nbdev.clean.clean_jupyter' in line   # saves in nbdev_clean's form
    assert line.split()[-2:] == ['.', '--allow-root'] if ROOT else line.split()[-1] == '.', line


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on nbs/, on a free localhost port with a random token; stopped (by PID) afterwards."
    tmp, port, token = tmp_path_factory.mktemp('lab'), free_port(), secrets.token_hex(16)
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'JUPYTER_RUNTIME_DIR': str(tmp / 'runtime'), 'JUPYTER_CONFIG_DIR': str(tmp / 'config')}
    log = open(tmp / 'lab.log', 'w')
    proc = subprocess.Popen([BIN / 'jupyter', 'lab', 'nbs', *(['--allow-root'] if ROOT else []), '--no-browser', '--ip=127.0.0.1',
                             f'--port={port}', '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}'],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(240):
            if proc.poll() is not None: pytest.fail(f'jupyter lab exited with {proc.returncode}:\n{(tmp / "lab.log").read_text()[-3000:]}')
            try:
                api(base, token, 'status'); break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f'jupyter lab did not answer in 120 s:\n{(tmp / "lab.log").read_text()[-3000:]}')
        yield base, token, tmp / 'runtime'
    finally:
        proc.send_signal(signal.SIGTERM)   # the server shuts its kernels down on the way out
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        log.close()


def api(base, token, path, method='GET', body=None):
    req = urllib.request.Request(f'{base}/api/{path}', method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={'Authorization': f'token {token}', 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=30) as r: return json.loads(r.read() or b'null')


def test_lab_lists_the_notebooks(lab):
    base, token, _ = lab
    names = {c['name'] for c in api(base, token, 'contents')['content']}
    assert {'00_losses.ipynb', '11_train.ipynb', 'index.ipynb', 'experiments'} <= names, names
    with pytest.raises(urllib.error.HTTPError) as e: api(base, 'wrong' + token, 'contents')
    assert e.value.code == 403   # the token is required


def test_a_kernel_runs_the_losses_notebook(lab):
    from jupyter_client import BlockingKernelClient
    base, token, runtime = lab
    cells = api(base, token, 'contents/00_losses.ipynb')['content']['cells']
    code = [c['source'] for c in cells if c['cell_type'] == 'code' and not c['source'].startswith('#| default_exp')]
    # from the imports to the first test of the loss (its `#| export` cells define it in the kernel, as in JupyterLab)
    upto = next(i for i, src in enumerate(code) if 'truncated_triplet_loss(' in src and not src.startswith('#| export')) + 1
    session = api(base, token, 'sessions', 'POST', dict(path='00_losses.ipynb', type='notebook', name='00_losses.ipynb',
                                                      kernel=dict(name='python3')))
    try:
        client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{session['kernel']['id']}.json"))
        client.load_connection_file(); client.start_channels(); client.wait_for_ready(timeout=120)
        outputs = []
        for src in code[:upto]:
            reply = client.execute_interactive(src, timeout=120, output_hook=outputs.append)
            assert reply['content']['status'] == 'ok', (src[:200], reply['content'].get('evalue'), reply['content'].get('traceback', [])[-3:])
        reply = client.execute_interactive("print(truncated_triplet_loss.__module__)", timeout=60, output_hook=outputs.append)
        printed = ''.join(m['content'].get('text', '') for m in outputs if m['header']['msg_type'] == 'stream')
        assert printed.split()[-1] == '__main__', printed   # defined by the notebook's own cell
        client.stop_channels()
    finally:
        api(base, token, f"sessions/{session['id']}", 'DELETE')   # and its kernel
    assert session['kernel']['id'] not in {k['id'] for k in api(base, token, 'kernels')}


def test_the_notebook_opens_in_chromium(lab):
    if CHROMIUM is None:
        pytest.skip("No Chromium: this check needs Debian's `chromium` package (`make test` installs it as root; or set CHROMIUM=/path).")
    from playwright.sync_api import sync_playwright
    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page, errors = browser.new_page(viewport={'width': 1280, 'height': 900}), []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.goto(f'{base}/lab/tree/00_losses.ipynb?token={token}', timeout=120_000)
            page.wait_for_selector('.jp-Notebook .jp-MarkdownCell', timeout=120_000)
            page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-Cell').length > 10", timeout=60_000)
            page.locator('.jp-Notebook .jp-RenderedMarkdown h1', has_text='Losses').wait_for(timeout=60_000)   # markdown rendered
            page.wait_for_selector('.jp-Notebook .jp-MarkdownCell mjx-container', timeout=60_000)   # the math is typeset
            assert not errors, errors
        finally: browser.close()
