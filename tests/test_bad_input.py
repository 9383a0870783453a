"""Bad input and faults, as a careless or hostile user would cause them: each case writes its bad input into a
temporary folder and checks for one clear error naming the file or value, or the documented safe behaviour."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from jvcr.cli import main
from jvcr.core import DataError, run_lock
import jvcr.datasets as jd
import jvcr.folders as jf
from jvcr.landmarks import canonical_face_3d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err, *must):
    "The CLI printed exactly one error line, naming every string in `must`, and no traceback."
    lines = [l for l in err.strip().splitlines() if 'error:' in l]
    assert len(lines) == 1 and 'Traceback' not in err, err
    for m in must: assert str(m) in lines[0], (m, lines[0])


def face(scale=100., shift=150.):
    return canonical_face_3d() * scale + [shift, shift, 0]


def landmark_folder(dst, names, pts, size=300):
    "A landmark folder whose images are plain grey pictures."
    jf.save_landmark_folder(dst, names, pts)
    for n in names:
        (dst / 'images' / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new('RGB', (size, size), (128, 128, 128)).save(dst / 'images' / n)
    return dst


# 1. the test set never gets into training
def test_test_set_beside_training_files_is_refused(tmp_path, capsys, real_data):
    "300W-LP .mat files next to an aflw2000_3d/ folder: refused, whichever file comes first."
    d = tmp_path / 'mixed'
    d.mkdir()
    for f in ('IBUG_image_008_1_0.jpg', 'IBUG_image_008_1_0.mat'): shutil.copy(real_data / '300w_lp_sample' / f, d / f)
    (d / 'aflw2000_3d').mkdir()
    for f in ('image00002.jpg', 'image00002.mat'): shutil.copy(real_data / 'aflw2000_3d' / f, d / 'aflw2000_3d' / f)
    code, _, err = run(capsys, 'train', '--data', d, '--out', tmp_path / 'run', '--no-progress')
    assert code == 2 and not (tmp_path / 'run' / 'last.pt').exists()
    one_line_error(err, 'image00002', 'test set')


def test_renamed_test_file_is_refused(tmp_path, capsys, real_data):
    "An AFLW2000-3D .mat under another folder name is still recognised (it has pt3d_68)."
    d = tmp_path / 'renamed'
    d.mkdir()
    for f in ('image00002.jpg', 'image00002.mat'): shutil.copy(real_data / 'aflw2000_3d' / f, d / f.replace('image', 'face'))
    code, _, err = run(capsys, 'train', '--data', d, '--out', tmp_path / 'run', '--no-progress')
    assert code == 2
    one_line_error(err, 'face00002.mat', 'pt3d_68')
    with pytest.raises(jd.TestSetError): jd.load_300w_lp(d, on_error='skip')    # refused, never skipped


# 2. output paths are checked before any work
@pytest.mark.parametrize('flag', ['--json', '--per-face'])
def test_evaluate_bad_output_path_fails_first(tmp_path, capsys, flag):
    (tmp_path / 'file').write_text('x')
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--root', tmp_path / 'no-data', flag, tmp_path / 'file' / 'r.out')
    assert code == 2
    one_line_error(err, 'file is a file, not a folder')                 # not the missing data: nothing was loaded


def test_evaluate_output_folder_is_created(tmp_path, capsys):
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--root', tmp_path / 'no-data',
                       '--per-face', tmp_path / 'new' / 'dir' / 'x.csv')
    assert code == 2 and (tmp_path / 'new' / 'dir').is_dir()              # created; then the missing data is the error
    one_line_error(err, 'no-data')


def test_unwritable_output_folder(tmp_path, capsys):
    if os.geteuid() == 0: pytest.skip("root may write anywhere: the permission check cannot fail")
    ro = tmp_path / 'ro'; ro.mkdir(); ro.chmod(0o500)
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--json', ro / 'r.json')
    assert code == 2
    one_line_error(err, 'not writable')


def test_train_out_is_a_file(tmp_path, capsys):
    (tmp_path / 'f').write_text('x')
    code, _, err = run(capsys, 'train', '--data', 'toy:8', '--out', tmp_path / 'f', '--no-progress')
    assert code == 2 and (tmp_path / 'f').read_text() == 'x'
    one_line_error(err, 'is a file')


def test_render_out_under_a_file(tmp_path, capsys):
    (tmp_path / 'f').write_text('x')
    code, _, err = run(capsys, 'data', 'render', '2', '--source', 'toy', '--out', tmp_path / 'f' / 'sub', '--no-progress')
    assert code == 2
    one_line_error(err, 'is a file, not a folder')


def test_labels_json_checked_before_fitting(tmp_path, capsys):
    (tmp_path / 'f').write_text('x')
    t0 = time.monotonic()
    code, _, err = run(capsys, 'data', 'labels', '--root', tmp_path / 'no-data', '--json', tmp_path / 'f' / 'l.json', '--no-progress')
    assert code == 2 and not list(tmp_path.glob('**/*.tmp'))
    one_line_error(err, 'is a file, not a folder')


# 3. render never overwrites silently; workers are capped
def test_render_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / 'r'
    assert run(capsys, 'data', 'render', '2', '--source', 'toy', '--res', '32', '--out', out, '--no-progress')[0] == 0
    before = (out / 'points.json').read_bytes()
    code, _, err = run(capsys, 'data', 'render', '3', '--source', 'toy', '--res', '32', '--out', out, '--no-progress')
    assert code == 2 and (out / 'points.json').read_bytes() == before
    one_line_error(err, str(out), 'not empty', '--add', '--overwrite')
    code, out_, err = run(capsys, 'data', 'render', '1', '--source', 'toy', '--res', '32', '--out', out, '--no-progress',
                          '--add', '--workers', '500')
    assert code == 0 and 'capped' in err and json.loads((out / 'points.json').read_text())['n'] == 3


# 4. bad data is found by the checks and the skipping loaders
def test_data_check_decodes_images(tmp_path, capsys, real_data):
    root = tmp_path / 'root'
    shutil.copytree(real_data / 'jvcr_demo', root / 'jvcr_demo')
    jpg = root / 'jvcr_demo' / 'image00006.jpg'
    jpg.write_bytes(jpg.read_bytes()[:2000])                              # truncated
    code, out, _ = run(capsys, 'data', 'check', '--root', root)
    assert code == 1 and 'image00006.jpg' in out


def test_degenerate_face_is_skipped_and_named(tmp_path):
    d = landmark_folder(tmp_path / 'lf', ['good.jpg', 'flat.jpg'], np.stack([face(), np.full((68, 3), 50.)]))
    with pytest.warns(UserWarning, match='skipped 1 of 2'):
        src = jf.load_landmark_folder(d, on_error='skip')
    assert [s.id for s in src] == ['good'] and 'flat.jpg' in src.skipped[0][0] and 'size must be > 0' in src.skipped[0][1]
    with pytest.raises(DataError, match='flat.jpg'): jf.load_landmark_folder(d)


def test_corrupt_image_skipped_when_the_source_is_read(tmp_path):
    d = landmark_folder(tmp_path / 'lf', ['a.jpg', 'b.jpg'], np.stack([face(), face(90.)]))
    (d / 'images' / 'b.jpg').write_bytes(b'\xff\xd8\xff garbage')
    with pytest.warns(UserWarning):
        src = jf.load_landmark_folder(d, on_error='skip')
    assert [s.id for s in src] == ['a'] and 'b.jpg' in src.skipped[0][1]


def test_corrupt_image_in_training_is_one_line_and_a_rerun_is_allowed(tmp_path, capsys):
    "A corrupt image met mid-training (2 loader workers): one line naming it; no weights were written, so a plain rerun is not refused."
    names = [f'f{i}.jpg' for i in range(12)]
    d = landmark_folder(tmp_path / 'lf', names, np.stack([face(80 + i) for i in range(12)]))
    for n in names[1:]: (d / 'images' / n).write_bytes(b'\xff\xd8\xff garbage')     # the first one passes the pre-checks
    args = ('train', '--preset', 'tiny', '--data', d, '--out', tmp_path / 'run', '--epochs', '1', '1', '--no-progress',
            '--workers', '2', '--val-fraction', '0')
    code, _, err = run(capsys, *args)
    assert code == 2 and 'Traceback' not in err
    one_line_error(err, 'cannot read image')
    assert not (tmp_path / 'run' / '.lock').exists()
    code, _, err = run(capsys, *args)
    assert 'already holds a training run' not in err                     # the dead run does not block a rerun
    one_line_error(err, 'cannot read image')


# 5. one run per folder; no duplicated log rows after a resume
def test_second_run_into_a_locked_folder_is_refused(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        out = tmp_path / 'run'; out.mkdir()
        (out / '.lock').write_text(str(holder.pid))
        code, _, err = run(capsys, 'train', '--data', 'toy:16', '--out', out, '--no-progress', '--resume')
        assert code == 2 and not (out / 'metrics.jsonl').exists()
        one_line_error(err, f'pid {holder.pid}')
    finally: holder.kill(); holder.wait()
    code, _, _ = run(capsys, 'train', '--data', 'toy:16', '--out', out, '--no-progress', '--resume', '--epochs', '1', '0')
    assert code == 0 and not (out / '.lock').exists()                     # the stale lock was taken over, then released


def test_resume_after_a_kill_before_the_first_checkpoint(tmp_path, capsys):
    out = tmp_path / 'run'
    assert run(capsys, 'train', '--data', 'toy:16', '--out', out, '--no-progress', '--epochs', '1', '0')[0] == 0
    from jvcr.curves import read_metrics
    rows = read_metrics(out, timings=False)
    (out / 'last.pt').unlink(); (out / 'best.pt').unlink(missing_ok=True)   # as if killed before its first checkpoint
    assert run(capsys, 'train', '--data', 'toy:16', '--out', out, '--no-progress', '--epochs', '1', '0', '--resume')[0] == 0
    assert read_metrics(out, timings=False) == rows                       # the dead run's rows are not kept twice


# 7. smaller cases
def test_evaluate_missing_checkpoint_before_loading(tmp_path, capsys):
    code, _, err = run(capsys, 'evaluate', '--checkpoint', tmp_path / 'nope.pt', '--root', tmp_path / 'no-data')
    assert code == 2
    one_line_error(err, 'checkpoint not found', 'nope.pt')


def test_evaluate_batch_zero(tmp_path, capsys):
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--batch', '0')
    assert code == 2
    one_line_error(err, 'batch size must be a positive integer, got 0')


def test_label_fit_says_what_it_does_without_a_bar(tmp_path, capsys, real_data, monkeypatch):
    from jvcr.aflw_labels import fit_folder
    from jvcr.testing import write_aflw_folder
    monkeypatch.setenv('JVCR_CACHE', str(tmp_path / 'cache'))
    q = np.random.default_rng(0).uniform(30, 90, (3, 21, 2))
    fit_folder(write_aflw_folder(tmp_path / 'crops', q, np.ones((3, 21), bool)), progress=False)
    err = capsys.readouterr().err
    assert 'fitting 3D labels to 3 faces' in err and 'cached' in err


# 8. issue 19: nothing lost, nothing silent (predict, export, evaluate, the browser, reproduce, bench)
import io, struct, warnings, zlib
import torch
import jvcr.inference as ji
import jvcr.shipped as js
from jvcr.model import JVCR, save_checkpoint


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny.pt', JVCR('tiny'))


@pytest.fixture
def photos(tmp_path):
    "photos/me.png (a toy face) and its landmark box."
    from jvcr.synthetic import procedural_face
    f = procedural_face(5, res=96, yaw_range=(-30, 30), degradation=False)
    (tmp_path / 'photos').mkdir()
    Image.fromarray(f.image).save(tmp_path / 'photos' / 'me.png')
    return tmp_path / 'photos' / 'me.png', ji.landmark_box(f.pts)


def predict(capsys, *argv): return run(capsys, 'predict', *argv, '--no-progress')


def box_args(box): return ['--box', *map(str, box)]


def test_export_refuses_its_own_checkpoint(tmp_path, capsys, ckpt):
    c = tmp_path / 'ck.pt'; shutil.copy(ckpt, c)
    before = c.read_bytes()
    for extra in ([], ['--overwrite']):
        code, _, err = run(capsys, 'export', '--format', 'torchscript', '--checkpoint', c, '--out', c, *extra)
        assert code == 2 and c.read_bytes() == before
        one_line_error(err, 'ck.pt is also the input --checkpoint')
    os.link(c, tmp_path / 'hard.pt')                                     # another name of the same file
    code, _, err = run(capsys, 'export', '--format', 'torchscript', '--checkpoint', c, '--out', tmp_path / 'hard.pt', '--overwrite')
    assert code == 2 and c.read_bytes() == before
    one_line_error(err, 'hard.pt is also the input --checkpoint')


def test_export_refuses_an_existing_file(tmp_path, capsys, ckpt):
    (tmp_path / 'notes.pt').write_text('my notes')
    code, _, err = run(capsys, 'export', '--format', 'torchscript', '--checkpoint', ckpt, '--out', tmp_path / 'notes.pt')
    assert code == 2 and (tmp_path / 'notes.pt').read_text() == 'my notes'
    one_line_error(err, 'notes.pt exists; pass --overwrite')
    code, _, _ = run(capsys, 'export', '--format', 'torchscript', '--checkpoint', ckpt, '--out', tmp_path / 'notes.pt', '--overwrite')
    assert code == 0 and js.load_exported(tmp_path / 'notes.pt')(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 71, 3)


@pytest.mark.parametrize('fmt,out,want', [('torchscript', 'm.onnx', 'torchscript files end in .pt or .ts'),
                                          ('onnx', 'm.pt', 'onnx files end in .onnx')])
def test_export_format_checked_against_suffix_first(tmp_path, capsys, fmt, out, want):
    "Checked before anything is loaded: the checkpoint does not even exist."
    code, _, err = run(capsys, 'export', '--format', fmt, '--checkpoint', tmp_path / 'none.pt', '--out', tmp_path / out)
    assert code == 2 and not list(tmp_path.iterdir())
    one_line_error(err, want, out)


def test_predict_overlay_never_replaces_the_input_photo(tmp_path, capsys, ckpt, photos):
    me, box = photos
    before = me.read_bytes()
    code, _, err = predict(capsys, me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--overlay', me.parent, '--overwrite')
    assert code == 2 and me.read_bytes() == before and not (tmp_path / 'p.json').exists()
    one_line_error(err, 'me.png is also the input IMAGE')
    code, _, _ = predict(capsys, me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--overlay', tmp_path / 'ov')
    assert code == 0 and (tmp_path / 'ov' / 'me.png').is_file() and me.read_bytes() == before


def test_predict_existing_outputs_need_overwrite(tmp_path, capsys, ckpt, photos):
    me, box = photos
    args = [me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--overlay', tmp_path / 'ov']
    assert predict(capsys, *args)[0] == 0
    code, _, err = predict(capsys, *args)
    assert code == 2
    one_line_error(err, 'p.json exists; pass --overwrite')
    code, _, err = predict(capsys, me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'q.json', '--overlay', tmp_path / 'ov')
    assert code == 2
    one_line_error(err, str(tmp_path / 'ov' / 'me.png'), 'exists')
    assert predict(capsys, *args, '--overwrite')[0] == 0
    (tmp_path / 'b.csv').write_text(f'image,x0,y0,x1,y1\n{me},' + ','.join(map(str, box)) + '\n')
    code, _, err = predict(capsys, me, '--boxes', tmp_path / 'b.csv', '--checkpoint', ckpt, '--out', tmp_path / 'b.csv', '--overwrite')
    assert code == 2 and 'image,x0' in (tmp_path / 'b.csv').read_text()
    one_line_error(err, 'b.csv is also the input --boxes')


def test_predict_all_failed_keeps_the_earlier_out(tmp_path, capsys, ckpt, photos):
    me, box = photos
    assert predict(capsys, me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.json')[0] == 0
    good = (tmp_path / 'p.json').read_bytes()
    (tmp_path / 'bad.jpg').write_bytes(b'not an image')
    code, out, err = predict(capsys, tmp_path / 'bad.jpg', *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--overwrite')
    assert code == 1 and (tmp_path / 'p.json').read_bytes() == good
    assert 'no image was predicted: nothing written' in out and 'bad.jpg' in err


@pytest.mark.parametrize('flag', ['--predictions', '--json'])
def test_evaluate_outputs_on_one_path_refused(tmp_path, capsys, flag):
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--root', tmp_path / 'no-data',
                       '--per-face', tmp_path / 'same.csv', flag, tmp_path / 'same.csv')
    assert code == 2 and not (tmp_path / 'same.csv').exists()
    one_line_error(err, 'same.csv', 'are the same file')


def test_evaluate_existing_output_needs_overwrite(tmp_path, capsys):
    (tmp_path / 'r.json').write_text('{"keep": 1}')
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--root', tmp_path / 'no-data', '--json', tmp_path / 'r.json')
    assert code == 2 and (tmp_path / 'r.json').read_text() == '{"keep": 1}'
    one_line_error(err, 'r.json exists; pass --overwrite')
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--root', tmp_path / 'no-data', '--json', tmp_path / 'r.json', '--overwrite')
    one_line_error(err, 'no-data')                                        # past the rule: the missing data is the error now


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from jvcr.browser import EvalBrowser
    from jvcr.evaluation import MeanFacePredictor, evaluate, schematic_faces
    tmp = tmp_path_factory.mktemp('browser')
    mf = MeanFacePredictor(mean=canonical_face_3d() * [1, -1, 1] * [1, 1, 0.5])      # flattened: errors of several percent
    evaluate(mf, schematic_faces(8, 0, 's'), progress=False, per_face_csv=tmp / 'f.csv', predictions_out=tmp / 'p.npz',
             run_info=dict(dataset='schematic'), crop='reference')
    return EvalBrowser(tmp / 'f.csv', tmp / 'p.npz')


def test_export_html_refuses_an_existing_file(tmp_path, browser):
    (tmp_path / 'precious.txt').write_text('precious')
    with pytest.raises(ValueError, match='precious.txt exists; pass --overwrite'): browser.export_html(0, tmp_path / 'precious.txt')
    with pytest.raises(ValueError, match='is also the input predictions'): browser.export_html(0, browser.npz, overwrite=True)
    assert (tmp_path / 'precious.txt').read_text() == 'precious'
    assert 'jvcr-face' in browser.export_html(0, tmp_path / 'precious.txt', overwrite=True).read_text()


def test_browser_error_range_in_percent(browser):
    e = browser.run['errors'][browser.protocols[0]] * 100                 # percent, as label() and jvcr evaluate print
    lo = float(np.median(e))
    assert sorted(browser.select(error_range=(lo, 100))) == sorted(np.flatnonzero(e >= lo)) and len(browser.select(error_range=(lo, 100)))
    assert browser.label(0).split()[1] == f"{e[0]:.2f}"
    with pytest.raises(ValueError, match=r'in percent .* pass \(5, 100\)'): browser.select(error_range=(0.05, 1))


def test_tiny_face_warns(tmp_path, capsys, ckpt):
    Image.new('RGB', (16, 16), (128, 128, 128)).save(tmp_path / 'small.png')
    code, out, err = predict(capsys, tmp_path / 'small.png', '--box', 0, 0, 15, 15, '--checkpoint', ckpt, '--out', tmp_path / 'a.json')
    assert code == 0 and 'small.png: the face box is 15 px, below the smallest usable face (32 px' in err and 'warning' in err
    code, out, err = predict(capsys, tmp_path / 'small.png', '--box', 3, 3, 3.01, 3.01, '--checkpoint', ckpt, '--out', tmp_path / 'b.json')
    assert code == 0 and 'the face box is 0.01 px' in err
    pred = ji.Predictor.from_checkpoint(ckpt)
    with pytest.warns(ji.SmallFaceWarning, match='small.png'): pred.predict(tmp_path / 'small.png', (0, 0, 15, 15))


def test_boxes_csv_unmatched_rows_named(tmp_path, capsys, ckpt, photos):
    me, box = photos
    b = ','.join(map(str, box))
    (tmp_path / 'boxes.csv').write_text(f'image,x0,y0,x1,y1\nphotos/me.png,{b}\nphotos/typo.png,{b}\nphotos/other.png,{b}\n')
    code, _, err = predict(capsys, me, '--boxes', tmp_path / 'boxes.csv', '--checkpoint', ckpt, '--out', tmp_path / 'p.json')
    assert code == 2 and not (tmp_path / 'p.json').exists()
    one_line_error(err, '2 row(s) match no image given', 'line 3 (photos/typo.png)', 'line 4 (photos/other.png)')


def test_boxes_csv_with_bom(tmp_path, capsys, ckpt, photos):
    me, box = photos
    (tmp_path / 'excel.csv').write_bytes(('image,x0,y0,x1,y1\r\nphotos/me.png,' + ','.join(map(str, box)) + '\r\n').encode('utf-8-sig'))
    code, _, err = predict(capsys, me, '--boxes', tmp_path / 'excel.csv', '--checkpoint', ckpt, '--out', tmp_path / 'p.json')
    assert code == 0, err
    f = json.loads((tmp_path / 'p.json').read_text())['images'][0]['faces'][0]
    assert f['source'] == 'given' and f['box'] == [round(v, 3) for v in box], (f['box'], box)


@pytest.mark.parametrize('flag', ['--threads', '--batch', '--runs'])
def test_bench_zero_is_one_line(capsys, flag):
    code, _, err = run(capsys, 'bench', '--preset', 'tiny', flag, 0)
    assert code == 2
    one_line_error(err, f'{flag} must be a positive integer, got 0')


def fake_checkout(root, notebooks):
    "A checkout with nbs/reproduce/NAME.ipynb whose one cell runs `code`."
    import nbformat
    (root / 'nbs' / 'reproduce').mkdir(parents=True); (root / 'settings.ini').write_text('')
    for name, code in notebooks.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
        nbformat.write(nb, root / 'nbs' / 'reproduce' / f'{name}.ipynb')
    return root


def test_second_reproduce_is_one_line(tmp_path, capsys, monkeypatch):
    "A second jvcr reproduce in the same checkout: one line naming the first one's pid, before any notebook runs."
    co = fake_checkout(tmp_path / 'co', {'one': "open('ran', 'w').write('1')"})
    monkeypatch.chdir(co)
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (co / 'runs' / 'reproduce').mkdir(parents=True); (co / 'runs' / 'reproduce' / '.lock').write_text(str(holder.pid))
        code, _, err = run(capsys, 'reproduce', '--device', 'cpu', '--no-progress')
        assert code == 2 and not (co / 'nbs' / 'reproduce' / 'ran').exists()
        one_line_error(err, f'in use by another jvcr reproduce (pid {holder.pid}')
    finally: holder.kill(); holder.wait()


def test_failing_reproduction_notebook_is_one_line(tmp_path, capsys, monkeypatch):
    "A notebook that meets a held training folder: the lock's message on its own line, no papermill traceback."
    msg = 'figures/runs/table1/arm is in use by another training run (pid 4242, lock file x/.lock): wait for it to finish'
    co = fake_checkout(tmp_path / 'co', {'held': f"raise ValueError({msg!r})"})
    monkeypatch.chdir(co)
    code, out, err = run(capsys, 'reproduce', '--device', 'cpu', '--no-progress')
    assert code == 1 and 'Traceback' not in err and 'PapermillExecutionError' not in err
    one_line_error(err, f'held: cell 1 failed: ValueError: {msg}', 'the executed notebook')


def test_reproduce_only_unknown_name_runs_nothing(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr('papermill.execute_notebook', lambda *a, **kw: calls.append(a))
    code, out, err = run(capsys, 'reproduce', '--only', 'volumes_and_model_size', 'nosuch', '--device', 'cpu')
    assert code == 2 and calls == [] and out == ''
    one_line_error(err, "unknown reproduction 'nosuch'", 'nothing was run')


@pytest.mark.parametrize('images,boxes,want', [
    (torch.zeros(3, 450, 450), None, 'torch tensor of shape (3, 450, 450)'),
    (b'\xff\xd8\xff\xe0 jpeg bytes', None, 'raw bytes, not an image'),
    (None, None, 'images is None'),
    (np.zeros((96, 96, 3), np.uint8), '10 10 50 50', "box '10 10 50 50' is a string")])
def test_predict_bad_python_inputs(ckpt, images, boxes, want):
    with pytest.raises(TypeError) as e: ji.Predictor.from_checkpoint(ckpt).predict(images, boxes)
    assert want in str(e.value) and 'one box for' not in str(e.value)


class FixedBox:
    "A stand-in face detector: the same face in every image."
    def __init__(self, min_score=0.5): pass
    def face_boxes(self, img, name):
        from jvcr.detect import Detection
        return [Detection((20., 20., 70., 70.), 0.9)]


def test_four_images_without_boxes_are_four(tmp_path, capsys, ckpt, monkeypatch):
    imgs = []
    for i in range(4):
        Image.new('RGB', (96, 96), (120, 120, 120)).save(tmp_path / f'{i}.png'); imgs.append(tmp_path / f'{i}.png')
    r = ji.Predictor.from_checkpoint(ckpt, detector=FixedBox()).predict(imgs, [None] * 4, errors='skip')
    assert [x['error'] for x in r] == [None] * 4 and [f['score'] for x in r for f in x['faces']] == [0.9] * 4
    import jvcr.faces
    monkeypatch.setattr(jvcr.faces, 'FaceFinder', FixedBox)     # what jvcr predict builds for images without a box
    code, out, err = predict(capsys, *imgs, '--checkpoint', ckpt, '--out', tmp_path / 'p.json')
    assert code == 0 and 'one box' not in err and 'wrote 4 faces of 4 of 4 images' in out


def png_header(path, w, h):
    "A PNG that only claims its size (no pixel data): enough for a size check made before decoding."
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IEND', b''))
    return path


def test_200_megapixel_photo_needs_max_pixels(tmp_path, capsys, ckpt):
    big = png_header(tmp_path / 'big.png', 20000, 10000)
    code, out, err = predict(capsys, big, '--box', 0, 0, 5000, 5000, '--checkpoint', ckpt, '--out', tmp_path / 'p.json')
    assert code == 1 and 'DecompressionBomb' not in err and not (tmp_path / 'p.json').exists()
    assert f'{big}: 20000x10000 is 200 megapixels' in err and 'pass --max-pixels 200000000' in err
    code, out, err = predict(capsys, big, '--box', 0, 0, 5000, 5000, '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--max-pixels', 200_000_000)
    assert code == 1 and 'cannot read image' in err and 'megapixels' not in err   # past the limit, decoded: this file has no pixels
    code, _, err = predict(capsys, big, '--box', 0, 0, 5, 5, '--checkpoint', ckpt, '--out', tmp_path / 'p.json', '--max-pixels', 0)
    assert code == 2
    one_line_error(err, '--max-pixels must be a positive integer, got 0')


def test_108_megapixel_photo_reads_without_pil_warning(tmp_path, ckpt):
    "A real 12000 x 9000 photo (above PIL's 89 MP warning, below the limit): read, no DecompressionBombWarning."
    p = tmp_path / 'wide.png'
    Image.new('L', (12000, 9000), 100).save(p, compress_level=1)
    with warnings.catch_warnings():
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        pts = ji.Predictor.from_checkpoint(ckpt).predict_points(p, (5000, 4000, 5400, 4400))
    assert pts.shape == (1, 68, 3) and np.isfinite(pts).all()
    with pytest.raises(ValueError, match=r'wide.png: 12000x9000 is 108 megapixels.*max_pixels=100000000'):
        ji.Predictor.from_checkpoint(ckpt, max_pixels=100_000_000).predict(p, (5000, 4000, 5400, 4400))


def test_protobuf_missing_names_protobuf():
    "MediaPipe present, protobuf not (a fresh interpreter that cannot import it): the error names protobuf, not the extra."
    pytest.importorskip('mediapipe')
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[:2] == ['google', 'protobuf']: raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from jvcr.detect import _face_detection_module\n"
            "try: _face_detection_module()\n"
            "except ImportError as e: print(e)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert 'cannot import google.protobuf' in r.stdout and 'pip install protobuf' in r.stdout and 'jvcr[detect]' not in r.stdout, r.stdout + r.stderr


def test_outputs_get_the_umask(tmp_path, capsys, ckpt, photos):
    me, box = photos
    old = os.umask(0o022)
    try:
        assert predict(capsys, me, *box_args(box), '--checkpoint', ckpt, '--out', tmp_path / 'p.csv', '--overlay', tmp_path / 'ov')[0] == 0
        os.umask(0o077)
        assert run(capsys, 'export', '--format', 'torchscript', '--checkpoint', ckpt, '--out', tmp_path / 'private.pt')[0] == 0
    finally: os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / 'p.csv', tmp_path / 'ov' / 'me.png', tmp_path / 'private.pt')}
    assert modes == {'p.csv': 0o644, 'me.png': 0o644, 'private.pt': 0o600}, modes           # as open() would give them


@pytest.mark.parametrize('value', ['x', '-1', 'nan', 'inf'])
def test_evaluate_bad_prior_names_it(tmp_path, capsys, value):
    code, _, err = run(capsys, 'evaluate', '--checkpoint', 'default', '--prior', value, '--root', tmp_path / 'no-data')
    assert code == 2
    one_line_error(err, "--prior must be 'none', 'mean' or a number >= 0", repr(value))


def test_evaluate_levers_need_a_checkpoint(tmp_path, capsys):
    code, _, err = run(capsys, 'evaluate', '--baseline', 'mean-face', '--flip', '--root', tmp_path / 'no-data')
    assert code == 2
    one_line_error(err, '--flip, --prior and --recrop change how a checkpoint is used', 'mean-face')


def test_evaluate_levers_reach_the_predictor():
    from jvcr.cli import _lever_options
    from jvcr.recrop import RecropPredictor
    assert _lever_options(0, False, None) == {}
    assert _lever_options(0, True, 'mean') == {'predictor_options': {'flip': True, 'prior': 'mean'}}
    assert _lever_options(2, False, 10.0) == {'predictor_type': RecropPredictor, 'predictor_options': {'passes': 2, 'prior': 10.0}}


def test_evaluate_levers_default_to_the_card(tmp_path):
    "Left out, --flip and --prior take the shipped card's choice; given, they win; a checkpoint without a card has none."
    from jvcr.cli import _chosen_levers
    from jvcr.model import JVCR, save_checkpoint
    from jvcr.shipped import ship_weights
    ck = save_checkpoint(tmp_path / 'tiny.pt', JVCR('tiny'))
    ship_weights(ck, 'chosen', dict(test_time={'flip': True, 'prior': 'mean'}), folder=tmp_path / 'w')
    card = tmp_path / 'w' / 'chosen.pt'
    assert _chosen_levers(card, None, None) == (True, 'mean')
    assert _chosen_levers(card, False, 'none') == (False, None)
    assert _chosen_levers(card, None, '10') == (True, 10.0)
    assert _chosen_levers(ck, None, None) == (False, None)
    assert _chosen_levers(None, None, None) == (False, None)
