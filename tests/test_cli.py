"""The `jvcr` console script end to end (in-process through jvcr.cli.main, and as an installed script)."""
import argparse, inspect, json, subprocess, sys
import numpy as np
from pathlib import Path
import pytest
import jvcr.cli as cli
from jvcr.cli import main, build_parser, BENCH_COMMANDS, SHARED_OPTIONS


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _subparsers(parser, path=()):
    "(('bench', 'model'), parser), ... for every subcommand of `parser`, nested ones too."
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _subparsers(sub, path + (name,))


def test_bench_model_json(capsys):
    code, out, _ = run(capsys, 'bench', 'model', '--preset', 'tiny', '--runs', '2', '--json')
    r = json.loads(out)
    assert code == 0
    for k in ('params_hourglass', 'params_regressor', 'params_total', 'gmacs', 'ms_per_crop', 'threads', 'batch', 'dtype'):
        assert k in r, k
    assert r['params_total'] == r['params_hourglass'] + r['params_regressor'] and r['ms_per_crop'] > 0
    assert (r['preset'], r['runs'], r['threads']) == ('tiny', 2, 2)


def test_bench_targets_json(capsys):
    code, out, _ = run(capsys, 'bench', 'targets', '--faces', '4', '--batch', '2', '--json')
    r = json.loads(out)
    assert code == 0 and r['targets_per_s'] > 0 and r['naive_targets_per_s'] > 0 and (r['n_faces'], r['batch']) == (4, 2)


def test_bench_render_and_training(capsys):
    "Each runs its function with the options given (tiny cases); the output is the function's dict as indented JSON."
    code, out, _ = run(capsys, 'bench', 'render', '--source', 'toy', '--faces', '2', '--res', '48')
    r = json.loads(out)
    assert code == 0 and out.count('\n') > 1 and (r['source'], r['faces'], r['res']) == ('toy', 2, 48) and r['faces_per_s'] > 0
    code, out, _ = run(capsys, 'bench', 'training', '--batch', '2', '--steps', '1', '--threads', '1', '--mode', 'pretrain', '--json')
    r = json.loads(out)
    assert code == 0 and (r['preset'], r['batch'], r['steps'], r['threads'], r['mode']) == ('tiny', 2, 1, 1, 'pretrain')


def test_bench_loader_real(capsys, real_data):
    code, out, err = run(capsys, 'bench', 'loader', '--root', str(real_data), '--faces', '4', '--batch', '2', '--workers', '0', '--json')
    r = json.loads(out)
    assert code == 0, err
    assert (r['samples'], r['batch_size'], r['workers'], r['preset']) == (4, 2, 0, 'paper') and r['samples_per_s'] > 0


@pytest.mark.parametrize('name', list(BENCH_COMMANDS))
def test_bench_options_are_the_functions(name):
    "Every option of `jvcr bench NAME` (but --json) is a parameter of its jvcr.bench function, with the function's default."
    import jvcr.bench as jb
    fn, rename = BENCH_COMMANDS[name]
    params = inspect.signature(getattr(jb, fn)).parameters
    a = vars(build_parser().parse_args(['bench', name]))
    opts = {rename.get(k, k): v for k, v in a.items() if k not in ('command', 'bench_command', 'func', 'json')}
    assert opts and set(opts) <= set(params), set(opts) - set(params)
    assert {k: params[k].default for k in opts} == opts


def test_bench_needs_a_subcommand_and_takes_only_its_options(capsys):
    with pytest.raises(SystemExit) as e: main(['bench'])
    assert e.value.code == 2 and 'BENCH_COMMAND' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(['bench', 'targets', '--dtype', 'bfloat16'])
    assert e.value.code == 2 and 'unrecognized arguments: --dtype' in capsys.readouterr().err


def test_bench_old_spelling_is_read_as_the_subcommand(capsys):
    code, out, err = run(capsys, 'bench', '--targets', '--faces', '3', '--json')
    assert code == 0 and json.loads(out)['n_faces'] == 3
    assert err.strip() == 'jvcr bench: note: read as `jvcr bench targets --faces 3 --json` (the modes are subcommands now)'
    code, out, err = run(capsys, 'bench', '--preset', 'tiny', '--runs', '1', '--json')
    assert code == 0 and json.loads(out)['preset'] == 'tiny' and 'jvcr bench model --preset tiny' in err
    code, out, err = run(capsys, 'bench', '--training', '--runs', '1', '--batch', '2', '--json')
    assert code == 0 and json.loads(out)['steps'] == 1 and 'jvcr bench training --steps 1' in err


def test_shared_options_are_defined_once():
    "Each shared option is written once (SHARED_OPTIONS; no add_argument('--name' for it in the CLI modules) and every subcommand that takes it has it from there."
    OWN = {'json': {'evaluate', 'data check', 'data labels'},   # options of their own by those names: a report file or the report as JSON,
           'preset': {'train'}}                                  # a training preset
    src = ''.join((Path(cli.__file__).parent / f).read_text() for f in ('cli.py', 'predict_files.py'))
    has = {n: [] for n in SHARED_OPTIONS}
    for path, p in _subparsers(build_parser()):
        for action in p._actions:
            for n in SHARED_OPTIONS:
                if '--' + n.replace('_', '-') in action.option_strings and ' '.join(path) not in OWN.get(n, ()):
                    assert action.help == SHARED_OPTIONS[n]['help'], (path, n, action.help)
                    has[n].append(' '.join(path))
    for n, users in has.items():
        assert f"add_argument('--{n.replace('_', '-')}'" not in src or n in OWN, n
        assert len(users) >= 2, (n, users)                                     # shared: more than one subcommand takes it
    assert set(has['no_progress']) == {'predict', 'reproduce', 'evaluate', 'train', 'data render', 'data labels'}, has['no_progress']
    assert set(has['root']) == {'bench loader', 'evaluate', 'data check', 'data flags', 'data labels'}, has['root']
    assert set(has['checkpoint']) == {'predict', 'export', 'evaluate'} and set(has['preset']) == {'bench model', 'bench loader', 'bench training'}
    assert set(has['json']) == {f'bench {b}' for b in BENCH_COMMANDS}


def test_own_defaults_show_in_help():
    "A subcommand's own default of a shared option is the one it parses and the one its --help states."
    parsers = dict(_subparsers(build_parser()))
    assert build_parser().parse_args(['bench', 'training']).preset == 'tiny'
    assert build_parser().parse_args(['bench', 'model']).preset == 'paper'
    assert '(default: tiny)' in ' '.join(parsers[('bench', 'training')].format_help().split())
    assert '(default: paper)' in ' '.join(parsers[('bench', 'model')].format_help().split())


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
    assert r.returncode == 0 and all(f'    {b} ' in r.stdout for b in BENCH_COMMANDS), r.stdout
    r = subprocess.run([str(exe), 'bench', 'loader', '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and '--root' in r.stdout and '--workers' in r.stdout and '--dtype' not in r.stdout, r.stdout


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
