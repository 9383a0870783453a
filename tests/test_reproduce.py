"""Papermill smoke runs: every reproduction notebook runs with its quick parameters into a temp folder."""
import json
import pytest
from jvcr.reproduce import list_reproductions, run_reproduction, quick_parameters

NAMES = list_reproductions()


def test_every_reproduction_has_quick_parameters():
    assert NAMES and set(NAMES) == set(quick_parameters())


@pytest.fixture(scope='module')
def shared_out(tmp_path_factory):
    "One output folder for all quick runs, as `jvcr reproduce` uses one: table2 and figure4 read aflw2000_3d's results."
    return tmp_path_factory.mktemp('reproduce')


@pytest.mark.parametrize('name', NAMES)   # in run order (list_reproductions)
def test_reproduction_quick(name, shared_out):
    from jvcr.core import data_status
    before = set(shared_out.rglob('*'))
    out, figs = run_reproduction(name, quick=True, parameters={'out_dir': str(shared_out)}, out_dir=shared_out / 'nb',
                                 progress=False)
    assert out.exists() and figs == shared_out
    found = sorted((shared_out / 'results').glob(f'{name}*.json'))  # NAME.json or NAME_<variant>.json
    assert len(found) == 1, found
    res = json.loads(found[0].read_text())
    assert res['parameters']['out_dir'] == str(shared_out) and res['provenance']['git_commit'] is not None
    for k, v in quick_parameters()[name].items(): assert res['parameters'][k] == v, (k, v)   # the injected values are echoed
    new = {p for p in set(shared_out.rglob('*')) - before if p.parent == shared_out and p.suffix in ('.png', '.md', '.html')}
    if name != 'figure4' or data_status()[0] is not None:   # figure4 draws the test run's faces: nothing to draw without data
        assert new, f'{name} wrote no figure or table'


def test_quick_or_data_less_runs_never_write_figures(tmp_path, monkeypatch):
    "Without an out_dir, a quick run (or one without data) writes under runs/reproduce/, never into the committed figures/."
    import jvcr.reproduce as jr
    from jvcr.core import repo_root
    calls = []
    monkeypatch.setattr('papermill.execute_notebook', lambda src, out, parameters, **kw: calls.append(parameters))
    _, figs = jr.run_reproduction(NAMES[0], quick=True, out_dir=tmp_path, progress=False)
    assert figs == repo_root() / 'runs' / 'reproduce' / 'figures_quick' and calls[-1]['out_dir'] == str(figs)
    monkeypatch.setattr(jr, 'data_status', lambda: (None, 'no data here'))
    _, figs = jr.run_reproduction(NAMES[0], quick=False, out_dir=tmp_path, progress=False)
    assert figs.name == 'figures_nodata' and calls[-1]['out_dir'] == str(figs)
