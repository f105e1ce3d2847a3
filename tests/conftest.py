import pytest

REPO = __import__('pathlib').Path(__file__).resolve().parent.parent


def pytest_unconfigure(config):
    "End the run with the plain closing line 'N passed, N failed' (after pytest's own summary)."
    reporter = config.pluginmanager.get_plugin('terminalreporter')
    if reporter is None: return
    count = lambda key: len([r for r in reporter.stats.get(key, []) if getattr(r, 'when', 'call') == 'call'])
    failed = count('failed') + len(reporter.stats.get('error', []))
    line = f"{count('passed')} passed, {failed} failed"
    if reporter.stats.get('skipped'): line += f", {len(reporter.stats['skipped'])} skipped"
    reporter.write_line(line)
