"""Papermill smoke runs: every reproduction notebook runs with its quick parameters into a temp folder."""
import json
import pytest
from jvcr.reproduce import list_reproductions, run_reproduction, quick_parameters

NAMES = list_reproductions()


def test_every_reproduction_has_quick_parameters():
    assert NAMES and set(NAMES) == set(quick_parameters())


@pytest.mark.parametrize('name', NAMES)
def test_reproduction_quick(name, tmp_path):
    out = run_reproduction(name, quick=True, parameters={'out_dir': str(tmp_path)}, out_dir=tmp_path / 'nb',
                           progress=False)
    assert out.exists()
    found = sorted((tmp_path / 'results').glob(f'{name}*.json'))  # NAME.json or NAME_<variant>.json
    assert len(found) == 1, found
    res = json.loads(found[0].read_text())
    assert res['parameters']['out_dir'] == str(tmp_path) and res['provenance']['git_commit'] is not None
    assert any(tmp_path.glob('*.png'))
