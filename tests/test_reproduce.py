"""Papermill smoke runs: every reproduction notebook runs with its quick parameters into a temp folder."""
import json
import pytest
from jvcr.reproduce import list_reproductions, run_reproduction, quick_parameters

NAMES = list_reproductions()


def test_every_reproduction_has_quick_parameters():
    assert NAMES and set(NAMES) == set(quick_parameters())


@pytest.mark.parametrize('name', NAMES)
def test_reproduction_quick(name, tmp_path):
    out, figs = run_reproduction(name, quick=True, parameters={'out_dir': str(tmp_path)}, out_dir=tmp_path / 'nb',
                                 progress=False)
    assert out.exists() and figs == tmp_path
    found = sorted((tmp_path / 'results').glob(f'{name}*.json'))  # NAME.json or NAME_<variant>.json
    assert len(found) == 1, found
    res = json.loads(found[0].read_text())
    assert res['parameters']['out_dir'] == str(tmp_path) and res['provenance']['git_commit'] is not None
    assert any(tmp_path.glob('*.png'))


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
