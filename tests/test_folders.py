"""The landmark folder, the reference code's JSON and the data-root check (jvcr.folders).

Tests taking the `real_data` fixture read the research data (skip with the reason outside CI, fail in CI).
Every bad-input case writes its broken files into a temporary folder; the small writers are test_datasets'.
"""
import json, shutil

import numpy as np
import pytest

import jvcr.folders as jf
from jvcr.core import DataError
from jvcr.landmarks import SUBSET_3DFAW_66
from test_datasets import _face_pts, _write_jpg, _write_aflw


def test_reference_json(tmp_path):
    pts = _face_pts(); _write_jpg(tmp_path / 'a.jpg')
    entries = [dict(img_paths='a.jpg', landmarks=(pts + [1, 1, 0]).tolist(), objpos=[201, 151], scale_provided=1.0, isValidation=False),
               dict(img_paths='gone.jpg', landmarks=pts.tolist(), objpos=[-1, -1], scale_provided=1.0, isValidation=True),
               dict(img_paths='a.jpg', landmarks=[[0, 0, 0]] * 68, objpos=[-1, -1], isValidation=True)]
    entries[2]['landmarks'][3] = [float('nan')] * 3
    (tmp_path / 'anno.json').write_text(json.dumps(entries).replace('NaN', 'NaN'))
    with pytest.raises(DataError, match='entry 1: image not found'): jf.load_reference_json(tmp_path / 'anno.json')
    tr = jf.load_reference_json(tmp_path / 'anno.json', split='train')
    assert (tr[0].crop.cx, tr[0].crop.cy, tr[0].crop.size) == (200, 150, 250)
    with pytest.warns(UserWarning, match='skipped 2 of 2'): jf.load_reference_json(tmp_path / 'anno.json', split='val', on_error='skip')
    (tmp_path / 'bad.json').write_text('{not json')
    with pytest.raises(DataError, match='cannot read annotation JSON'): jf.load_reference_json(tmp_path / 'bad.json')


def test_landmark_folder_66_and_errors(tmp_path):
    pts = np.stack([_face_pts(), _face_pts(180)])
    jf.save_landmark_folder(tmp_path, ['x/a.jpg', 'b.png'], pts[:, SUBSET_3DFAW_66], boxes=[[10, 10, 300, 320]] * 2)
    (tmp_path / 'images' / 'x').mkdir(); _write_jpg(tmp_path / 'images' / 'x' / 'a.jpg')
    with pytest.raises(DataError, match='row 1 \\(b.png\\): image not found'): jf.load_landmark_folder(tmp_path)
    _write_jpg(tmp_path / 'images' / 'b.png')
    src = jf.load_landmark_folder(tmp_path)
    assert [s.id for s in src] == ['x/a', 'b'] and src[0].extra['filled'] == [60, 64]
    np.testing.assert_allclose(src[1].pts[SUBSET_3DFAW_66], pts[1, SUBSET_3DFAW_66])
    assert src[0].crop.size == 310
    with pytest.raises(ValueError, match='68\\|66, 3'): jf.save_landmark_folder(tmp_path, ['a'], np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match='NaN'): jf.save_landmark_folder(tmp_path, ['a'], np.full((1, 68, 3), np.nan))
    np.save(tmp_path / 'landmarks.npy', np.zeros((3, 68, 3)))
    with pytest.raises(DataError, match='expected \\(2, 68\\|66, 3\\)'): jf.load_landmark_folder(tmp_path)


def test_empty_or_wrong_root(tmp_path):
    rep = jf.check_data_root(tmp_path)                            # empty folder
    assert not rep['ok'] and 'none of the known data folders' in jf.format_report(rep)
    rep = jf.check_data_root(tmp_path / 'does-not-exist')
    assert not rep['ok'] and 'does-not-exist' in jf.format_report(rep)


def test_check_data_root_real(real_data):
    rep = jf.check_data_root(real_data)
    assert rep['ok'], jf.format_report(rep)
    assert rep['yaw_bins'] == (1312, 383, 305) and rep['checksums']['checked'] > 0 and rep['checksums']['missing'] == rep['checksums']['mismatched'] == 0
    json.dumps(rep)                                               # the CLI's --json output
    assert 'OK' in jf.format_report(rep)


def test_check_data_root_broken(real_data, tmp_path):
    shutil.copytree(real_data / 'jvcr_demo', tmp_path / 'jvcr_demo')
    (tmp_path / 'jvcr_demo' / 'image00004.jpg').unlink()
    _write_aflw(tmp_path / 'aflw2000_3d', 'image00002', pt3d_68=None)
    (tmp_path / 'SHA256SUMS').write_text(f"{'0' * 64}  ./jvcr_demo/image00006.pts\n")
    rep = jf.check_data_root(tmp_path)
    text = jf.format_report(rep)
    assert not rep['ok']
    for must in ('image00004.pts', 'image00002.mat has no pt3d_68', 'image00006.pts does not match'): assert must in text, text
