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
    jd.save_landmark_folder(dst, names, pts)
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
        src = jd.load_landmark_folder(d, on_error='skip')
    assert [s.id for s in src] == ['good'] and 'flat.jpg' in src.skipped[0][0] and 'size must be > 0' in src.skipped[0][1]
    with pytest.raises(DataError, match='flat.jpg'): jd.load_landmark_folder(d)


def test_corrupt_image_skipped_when_the_source_is_read(tmp_path):
    d = landmark_folder(tmp_path / 'lf', ['a.jpg', 'b.jpg'], np.stack([face(), face(90.)]))
    (d / 'images' / 'b.jpg').write_bytes(b'\xff\xd8\xff garbage')
    with pytest.warns(UserWarning):
        src = jd.load_landmark_folder(d, on_error='skip')
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
    from jvcr.metrics import read_metrics
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
