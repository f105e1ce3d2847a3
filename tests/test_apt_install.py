"""Set-up under a busy apt: tools/apt_install.sh (`make data`, `make chromium`) waits while another process holds apt's
package-lists lock or dpkg's lock, then installs, instead of giving up. Played on a private apt state (APT_CONFIG pointing at
empty lists, sources and dpkg status in a temporary folder): no package is installed and the system's apt is not touched."""
import fcntl, os, shutil, subprocess, time
import pytest

from helpers import REPO
pytestmark = pytest.mark.skipif(not shutil.which('apt-get') or os.geteuid() != 0, reason='needs apt-get and root (as `make data` does)')


@pytest.fixture
def apt(tmp_path):
    for d in ('lists/partial', 'parts', 'cache/archives/partial', 'dpkg/updates'): (tmp_path / d).mkdir(parents=True)
    (tmp_path / 'dpkg' / 'status').touch(); (tmp_path / 'sources.list').touch()
    (tmp_path / 'apt.conf').write_text(f'Dir::State::Lists "{tmp_path}/lists"; Dir::Etc::SourceList "{tmp_path}/sources.list"; '
                                       f'Dir::Etc::SourceParts "{tmp_path}/parts"; Dir::Cache "{tmp_path}/cache"; '
                                       f'Dir::State::status "{tmp_path}/dpkg/status";\n')
    return tmp_path, {**os.environ, 'APT_CONFIG': str(tmp_path / 'apt.conf'), 'APT_WAIT': '60'}


@pytest.mark.parametrize('lock', ['lists/lock', 'dpkg/lock-frontend'])
def test_waits_for_a_held_lock(apt, lock):
    root, env = apt
    with open(root / lock, 'w') as held:
        fcntl.lockf(held, fcntl.LOCK_EX)   # as a running apt-get holds it
        p = subprocess.Popen([REPO / 'tools' / 'apt_install.sh'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert p.poll() is None, f"gave up while {lock} was held: {p.communicate()}"
        fcntl.lockf(held, fcntl.LOCK_UN)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    if lock == 'lists/lock': assert 'waiting for it' in out, out


def test_other_errors_fail_at_once(apt):
    root, env = apt
    (root / 'sources.list').write_text('this is not a sources line\n')
    t = time.time()
    r = subprocess.run([REPO / 'tools' / 'apt_install.sh'], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and time.time() - t < 20 and r.stderr.strip(), (r.returncode, r.stdout, r.stderr)
