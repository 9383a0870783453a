"""The `jvcr` console script end to end (in-process through jvcr.cli.main, and as an installed script)."""
import json, subprocess, sys
import numpy as np
from pathlib import Path
import pytest
from jvcr.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bench_model_json(capsys):
    code, out, _ = run(capsys, 'bench', '--preset', 'tiny', '--runs', '2', '--json')
    r = json.loads(out)
    assert code == 0
    for k in ('params_hourglass', 'params_regressor', 'params_total', 'gmacs', 'ms_per_crop', 'threads', 'batch', 'dtype'):
        assert k in r, k
    assert r['params_total'] == r['params_hourglass'] + r['params_regressor'] and r['ms_per_crop'] > 0


def test_bench_targets_json(capsys):
    code, out, _ = run(capsys, 'bench', '--targets', '--faces', '4', '--json')
    r = json.loads(out)
    assert code == 0 and r['targets_per_s'] > 0 and r['naive_targets_per_s'] > 0


def test_unknown_preset_is_one_line(capsys):
    code, out, err = run(capsys, 'bench', '--preset', 'nope', '--runs', '1')
    assert code == 2 and 'nope' in err and 'Traceback' not in err


def test_data_check_real(capsys, real_data):
    code, out, _ = run(capsys, 'data', 'check', '--root', str(real_data))
    assert code == 0, out
    assert '1312' in out and '383' in out and '305' in out


def test_data_check_bad_root(capsys, tmp_path):
    code, out, err = run(capsys, 'data', 'check', '--root', str(tmp_path / 'nowhere'))
    assert code != 0 and 'nowhere' in (out + err)


def test_help_lists_subcommands():
    exe = Path(sys.executable).with_name('jvcr')
    r = subprocess.run([str(exe), 'bench', '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and '--preset' in r.stdout and '--targets' in r.stdout


def test_data_render_toy(capsys, tmp_path):
    code, out, _ = run(capsys, 'data', 'render', '3', '--out', str(tmp_path / 'r'), '--source', 'toy', '--res', '96',
                       '--no-progress')
    meta = json.loads((tmp_path / 'r' / 'points.json').read_text())
    assert code == 0 and len(meta['faces']) == 3 and len(list((tmp_path / 'r' / 'images').glob('*.png'))) == 3
    assert np.asarray(meta['faces'][0]['pts']).shape == (68, 3)


def test_data_labels_validate(capsys, tmp_path, real_data):
    code, out, _ = run(capsys, 'data', 'labels', '--root', str(real_data), '--validate', '--json', str(tmp_path / 'l.json'),
                       '--no-progress', '--limit', '300')        # the same code on 300 faces (the full set: README command)
    rep = json.loads((tmp_path / 'l.json').read_text())
    assert code == 0 and rep['n'] == 300 and rep['validation']['n'] == 300
    assert rep['validation']['nme2d']['mean'] < 3.5  # the goal, percent, box normaliser


def test_train_toy_then_resume_refuses_other_config(capsys, tmp_path):
    out = tmp_path / 'run'
    code, o, _ = run(capsys, 'train', '--preset', 'tiny', '--data', 'toy:16', '--epochs', '1', '1', '--out', str(out),
                     '--no-progress')
    assert code == 0 and (out / 'last.pt').exists() and (out / 'metrics.jsonl').exists()
    before = (out / 'last.pt').read_bytes()
    code, o, err = run(capsys, 'train', '--preset', 'tiny', '--data', 'toy:16', '--epochs', '2', '2', '--out', str(out),
                       '--resume', '--batch', '8', '--no-progress')
    assert code == 2 and 'batch' in err and (out / 'last.pt').read_bytes() == before


def test_train_pool_refuses_test_set(capsys, real_data, tmp_path):
    code, o, err = run(capsys, 'train', '--data', str(real_data / 'aflw2000_3d'), '--out', str(tmp_path / 'r'), '--no-progress')
    assert code == 2 and 'test set' in err


def test_train_resume_with_a_longer_last_stage(capsys, tmp_path):
    "A finished run trains longer when only its last stage grows; the extension is in the log and the summary."
    out = tmp_path / 'run'
    assert run(capsys, 'train', '--preset', 'tiny', '--data', 'toy:16', '--epochs', '1', '1', '--out', str(out), '--no-progress')[0] == 0
    code, o, err = run(capsys, 'train', '--preset', 'tiny', '--data', 'toy:16', '--epochs', '1', '2', '--out', str(out),
                       '--resume', '--no-progress')
    summary = json.loads(o.strip().splitlines()[-1])
    assert code == 0 and summary['epochs_done'] == 3, err
    assert [(r['from_epochs'], r['to_epochs']) for r in summary['extended']] == [(1, 2)]
    code, _, err = run(capsys, 'train', '--preset', 'tiny', '--data', 'toy:16', '--epochs', '2', '2', '--out', str(out),
                       '--resume', '--no-progress')
    assert code == 2 and 'only the last stage may be made longer' in err
