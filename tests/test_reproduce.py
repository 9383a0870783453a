"""Papermill smoke runs: every reproduction notebook runs with its quick parameters into a temp folder."""
import json
import pytest
from jvcr.reproduce import list_reproductions, run_reproduction, quick_parameters, notebook_parameters

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
    found = sorted(f for f in (shared_out / 'results').glob(f'{name}*.json')   # NAME.json or NAME_<variant>.json, not another notebook's
                   if f.stem == name or f.stem not in NAMES)
    assert len(found) == 1, found
    res = json.loads(found[0].read_text())
    assert res['parameters']['out_dir'] == str(shared_out) and res['provenance']['git_commit'] is not None
    for k, v in quick_parameters()[name].items(): assert res['parameters'][k] == v, (k, v)   # the injected values are echoed
    assert set(res['parameters']) == set(notebook_parameters(name)), name                  # every parameter, and only those
    new = {p for p in set(shared_out.rglob('*')) - before if p.parent == shared_out and p.suffix in ('.png', '.md', '.html')}
    if name == 'table1_train': assert not new, new          # it trains and scores; table1.ipynb draws
    elif name != 'figure4' or data_status()[0] is not None:   # figure4 draws the test run's faces: nothing to draw without data
        assert new, f'{name} wrote no figure or table'


NOT_YET_SWITCHED = {}   # delete each entry once switched
LOCAL_COPIES = {               # what a notebook writes again -> the shared helper that does it
    '.savefig(': 'jvcr.curves.save_figure', 'csv.DictReader': 'jvcr.reproduce.per_face_errors',
    '.choice(len(': 'jvcr.reproduce.subsample', '|---': 'jvcr.reproduce.markdown_table',
    ".write_text(table": 'jvcr.reproduce.write_markdown', "extra['box_3ddfa']": 'jvcr.reproduce.real_box_faces',
    'plot_ced(': 'jvcr.reproduce.plot_ceds', 'detector_boxes(': 'jvcr.reproduce.detector_faces',
    "'tab:green'": 'jvcr.browser.GT_COLOR', "'tab:red'": 'jvcr.browser.PRED_COLOR',
}


@pytest.mark.parametrize('name', [n for n in NAMES if n not in NOT_YET_SWITCHED])
def test_reproductions_use_the_shared_helpers(name):
    "A reproduction notebook keeps what is its own: tables, figures, CEDs, per-face CSVs, face choices and the echo of its parameters are jvcr.reproduce's."
    import nbformat
    from jvcr.core import repo_root
    nb = nbformat.read(repo_root() / 'nbs' / 'reproduce' / f'{name}.ipynb', as_version=4)
    code = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
    again = {k: v for k, v in LOCAL_COPIES.items() if k in code}
    assert not again, f"{name}.ipynb writes again what a helper does: " + '; '.join(f'{k!r} -> use {v}' for k, v in again.items())
    assert f"notebook_parameters('{name}', globals())" in code, f"{name}.ipynb echoes its parameters by hand: use notebook_parameters"


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


def test_cuda_scale_trains_the_paper_preset_on_cpu(tmp_path):
    "What `jvcr reproduce --device cuda` injects (the paper preset, bf16 autocast, batch 20, 8 workers) is a valid run: a few steps on CPU."
    from jvcr.reproduce import reproduction_parameters
    from jvcr.config import get_train_config
    from jvcr.training import run_training
    p = reproduction_parameters('aflw2000_3d', device='cuda')
    assert (p['train_preset'], p['device'], p['workers']) == ('paper', 'cuda', 8)
    cfg = get_train_config(p['train_preset'])
    assert (cfg.model, cfg.amp, cfg.batch_size) == ('paper', True, 20)
    t1 = reproduction_parameters('table1_train', device='cuda')
    assert (t1['model'], t1['base_preset'], t1['device']) == ('paper', 'paper', 'cuda')
    s = run_training(p['train_preset'], 'toy:5', tmp_path / 'run', epochs=(1, 1), batch_size=2, device='cpu', num_workers=0,
                     progress=False, verbose=False)       # the same preset, two faces a step, on this CPU
    assert s['epochs_done'] == 2 and s['global_step'] == 4, s
    assert s['best_val_nme3d'] is not None and s['best_val_nme3d'] == s['best_val_nme3d']   # a finite validation number


def test_reproduce_cli_refuses_cuda_without_a_gpu(capsys):
    import torch
    from jvcr.cli import main
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    assert main(['reproduce', '--device', 'cuda', '--only', 'table1']) == 2
    assert 'CUDA is not available here' in capsys.readouterr().err
