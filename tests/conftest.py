import pytest


def pytest_unconfigure(config):
    "End the run with the plain closing line 'N passed, N failed' (after pytest's own summary)."
    reporter = config.pluginmanager.get_plugin('terminalreporter')
    if reporter is None: return
    count = lambda key: len([r for r in reporter.stats.get(key, []) if getattr(r, 'when', 'call') == 'call'])
    failed = count('failed') + len(reporter.stats.get('error', []))
    line = f"{count('passed')} passed, {failed} failed"
    if reporter.stats.get('skipped'): line += f", {len(reporter.stats['skipped'])} skipped"
    reporter.write_line(line)


# The fast tier (`make test-fast`, about the parts a change to one notebook needs): everything but the tests that
# start many processes or whole runs. `make test` (CI) runs every test.
SLOW_MODULES = {'test_faults', 'test_elastic', 'test_command_errors', 'test_config_errors', 'test_packaging', 'test_docs', 'test_lab', 'test_experiments',
                'test_ddp_train', 'test_ddp_loss', 'test_distributed_eval', 'test_multiprocess', 'test_gpu_check', 'test_detection'}
SLOW_NOTEBOOKS = ('11_train', '12_linear', '19_reid')   # 03, 04, 10: their multi-process checks are in test_multiprocess


def pytest_configure(config):
    config.addinivalue_line('markers', "slow: whole runs or several processes; left out by `make test-fast` (-m 'not slow')")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit('.', 1)[-1] if item.module else ''
        if module in SLOW_MODULES or (module == 'test_notebooks' and any(nb in item.name for nb in SLOW_NOTEBOOKS)):
            item.add_marker(pytest.mark.slow)
