"""Data sources, augmentation and the loader (jvcr.datasets, jvcr.augment); the landmark folder, the reference JSON
and the data-root check are in test_folders.py.

Tests taking the `root` fixture read the research data through conftest's `real_data` (skip with the reason
outside CI, fail in CI).
Every bad-input case writes its broken files into a temporary folder.
"""
import os, warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

import jvcr.datasets as jd
import jvcr.augment as ja
import jvcr.bench as jb
from jvcr.geometry import CropTransform
from jvcr.landmarks import canonical_face_2d


@pytest.fixture(scope='module')
def root(real_data): return real_data


@pytest.fixture(scope='module')
def aflw(root): return jd.load_aflw2000_3d(root / 'aflw2000_3d')


# ---------------------------------------------------------------- synthetic files (no real data needed)
def _face_pts(w=200, off=(120, 110)):
    "A 68x3 face in 0-based image pixels (z larger = nearer)."
    xy = canonical_face_2d() * w + off
    z = -np.linalg.norm(canonical_face_2d() - 0.5, axis=1) * w * 0.5
    return np.concatenate([xy, z[:, None]], 1)


def _write_jpg(path, size=(450, 450), mode='RGB'):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(path)


def _write_aflw(folder, name, pts=None, image=True, **fields):
    "An AFLW2000-3D style pair: NAME.mat (pt3d_68 1-based, Pose_Para) + NAME.jpg."
    folder.mkdir(parents=True, exist_ok=True)
    pts = _face_pts() if pts is None else pts
    d = dict(pt3d_68=(pts + [1, 1, 0]).T.astype(np.float32), Pose_Para=np.array([[0.1, 0.5, 0.0, 0, 0, 0, 1e-3]], np.float32))
    d.update(fields)
    sio.savemat(folder / f'{name}.mat', {k: v for k, v in d.items() if v is not None})
    if image: _write_jpg(folder / f'{name}.jpg')
    return folder / f'{name}.mat'


# ---------------------------------------------------------------- data root
def test_data_root_setting(tmp_path, monkeypatch):
    monkeypatch.setenv('JVCR_DATA', str(tmp_path))
    assert jd.data_root() == tmp_path.resolve()
    assert jd.data_root(tmp_path) == tmp_path.resolve()          # explicit argument wins
    monkeypatch.setenv('JVCR_DATA', str(tmp_path / 'missing'))
    with pytest.raises(jd.DataError, match=r'\$JVCR_DATA: .*missing'): jd.data_root()
    with pytest.raises(jd.DataError, match='no data folder found'): jd.data_root(tmp_path / 'nope')


def test_aflw2000_missing_or_empty_folder(tmp_path):
    with pytest.raises(jd.DataError, match='AFLW2000-3D folder not found'): jd.load_aflw2000_3d(tmp_path / 'x')
    with pytest.raises(jd.DataError, match='no .mat files in'): jd.load_aflw2000_3d(tmp_path)


# ---------------------------------------------------------------- images
def test_load_image_modes(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / 'g.png')
    Image.fromarray(rgb).convert('RGBA').save(tmp_path / 'a.png')
    Image.fromarray(rgb).convert('P').save(tmp_path / 'p.png')
    assert jd.load_image(tmp_path / 'g.png').shape == (20, 30, 3)
    assert (jd.load_image(tmp_path / 'a.png') == rgb).all()
    assert jd.load_image(tmp_path / 'p.png').dtype == np.uint8


def test_bad_images(tmp_path):
    _write_jpg(tmp_path / 'ok.jpg')
    data = (tmp_path / 'ok.jpg').read_bytes()
    (tmp_path / 'trunc.jpg').write_bytes(data[:len(data) // 3])
    (tmp_path / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff garbage')
    with pytest.raises(jd.DataError, match='trunc.jpg'): jd.load_image(tmp_path / 'trunc.jpg')
    with pytest.raises(jd.DataError, match='cannot read image .*corrupt.jpg'): jd.load_image(tmp_path / 'corrupt.jpg')
    with pytest.raises(jd.DataError, match='image not found'): jd.load_image(tmp_path / 'none.jpg')


# ---------------------------------------------------------------- AFLW2000-3D format, synthetic
def test_aflw_reader_convention(tmp_path):
    pts = _face_pts()
    f = _write_aflw(tmp_path, 'image00001', pts)
    s = jd.read_aflw2000_mat(f)
    np.testing.assert_allclose(s.pts, pts, atol=1e-4)              # pt3d_68 - [1, 1, 0]
    assert s.pts71.shape == (71, 3) and abs(s.yaw - np.degrees(0.5)) < 1e-4
    assert s.crop == CropTransform.from_points(s.pts)


def test_aflw_bad_files_raise_and_skip(tmp_path):
    _write_aflw(tmp_path, 'image00001')
    _write_aflw(tmp_path, 'image00002', pt3d_68=None)                                 # no pt3d_68
    nan = _face_pts(); nan[7, 1] = np.nan
    _write_aflw(tmp_path, 'image00003', nan)                                           # NaN points
    _write_aflw(tmp_path, 'image00004', image=False)                                   # missing image
    (tmp_path / 'image00005.mat').write_bytes(b'MATLAB 5.0 MAT-file truncated')       # unreadable .mat
    _write_jpg(tmp_path / 'image00005.jpg')
    with pytest.raises(jd.DataError, match='image00002.mat has no pt3d_68'): jd.load_aflw2000_3d(tmp_path)
    with pytest.raises(jd.DataError, match=r'image00003.mat: landmarks contain NaN or inf \(points \[7\]\)'):
        jd.read_aflw2000_mat(tmp_path / 'image00003.mat')
    with pytest.raises(jd.DataError, match='no image for annotation .*image00004.mat'): jd.read_aflw2000_mat(tmp_path / 'image00004.mat')
    with pytest.raises(jd.DataError, match='cannot read .mat file .*image00005.mat'): jd.read_aflw2000_mat(tmp_path / 'image00005.mat')
    with pytest.warns(UserWarning, match=r'skipped 4 of 5 samples'):
        src = jd.load_aflw2000_3d(tmp_path, on_error='skip')
    assert [s.id for s in src] == ['image00001']
    assert sorted(Path(f).name for f, _ in src.skipped) == [f'image0000{i}.mat' for i in (2, 3, 4, 5)]
    with pytest.raises(ValueError, match="on_error must be"): jd.load_aflw2000_3d(tmp_path, on_error='ignore')


def test_bad_image_in_source_is_reported(tmp_path):
    for n in ('image00001', 'image00002'): _write_aflw(tmp_path, n)
    (tmp_path / 'image00002.jpg').write_bytes((tmp_path / 'image00002.jpg').read_bytes()[:500])  # truncated
    src = jd.load_aflw2000_3d(tmp_path)                          # images are read lazily
    with pytest.raises(jd.DataError, match='image00002.jpg'): src.verify_images()
    with pytest.warns(UserWarning, match='skipped 1 of 2'): good = src.verify_images(on_error='skip')
    assert len(good) == 1 and 'image00002.jpg' in good.skipped[0][0]
    ds = ja.JVCRDataset(src, 'tiny')
    with pytest.raises(jd.DataError, match='image00002.jpg'): ds[1]
    with pytest.raises(Exception, match='image00002.jpg'):        # through DataLoader workers too
        list(ja.make_loader(ds, batch_size=1, workers=2, shuffle=False))


def test_grayscale_and_rgba_sources_load(tmp_path):
    _write_aflw(tmp_path, 'image00001'); _write_jpg(tmp_path / 'image00001.jpg', mode='L')
    _write_aflw(tmp_path, 'image00002', image=False); _write_jpg(tmp_path / 'image00002.png', mode='RGBA')
    item = ja.JVCRDataset(jd.load_aflw2000_3d(tmp_path), 'tiny')[0]
    assert item['image'].shape == (3, 64, 64)
    assert ja.JVCRDataset(jd.load_aflw2000_3d(tmp_path), 'tiny')[1]['image'].shape == (3, 64, 64)


# ---------------------------------------------------------------- other formats, synthetic
def test_pts_folder(tmp_path):
    pts = _face_pts()
    body = '\n'.join(' '.join(f'{v:.4f}' for v in p) for p in pts + [1, 1, 0])
    (tmp_path / 'a.pts').write_text(f'version: 1\nn_points: 68\n{{\n{body}\n}}\n'); _write_jpg(tmp_path / 'a.jpg')
    (tmp_path / 'b.pts').write_text('version: 1\nn_points: 68\n{\n1 2 3\n}\n'); _write_jpg(tmp_path / 'b.jpg')
    with pytest.raises(jd.DataError, match='b.pts: header says 68 points'): jd.load_pts_folder(tmp_path)
    with pytest.warns(UserWarning): src = jd.load_pts_folder(tmp_path, on_error='skip')
    np.testing.assert_allclose(src[0].pts, pts, atol=1e-3)


def test_300w_lp_mat_without_3dmm(tmp_path):
    sio.savemat(tmp_path / 'x.mat', {'pt2d': np.zeros((2, 68))}); _write_jpg(tmp_path / 'x.jpg')
    with pytest.raises(jd.DataError, match='x.mat has no Pose_Para, Shape_Para, Exp_Para'): jd.read_300w_lp_mat(tmp_path / 'x.mat')
    with pytest.raises(jd.DataError, match='x.mat has no Pose_Para, Shape_Para, Exp_Para'): jd.check_300w_lp_mat(tmp_path / 'x.mat')


# ---------------------------------------------------------------- augmentation and loader, synthetic
def test_augment_distribution_and_determinism():
    aug = ja.Augment()
    d = [aug.draw(ja.sample_rng(5, 0, i)) for i in range(3000)]
    sc, rot = np.array([a.scale for a in d]), np.array([a.rot for a in d])
    assert 0.92 <= sc.min() and sc.max() <= 1.08 and np.abs(rot).max() <= 80
    assert abs((rot != 0).mean() - 0.6) < 0.03 and abs(np.mean([a.flip for a in d]) - 0.5) < 0.03
    assert np.abs(np.array([a.color for a in d])).max() <= 0.3
    assert aug.draw(ja.sample_rng(5, 2, 9)) == aug.draw(ja.sample_rng(5, 2, 9))


def test_flip_relabels_before_auxiliary():
    pts = _face_pts()
    t = ja.target_points(pts, flip=True)
    np.testing.assert_allclose(t[36], pts[45]); np.testing.assert_allclose(t[68], pts[[43, 44, 46, 47]].mean(0))
    T = CropTransform(220, 200, 250, rot=30, flip=True, z_ref=pts[:, 2].mean())
    c = (T.apply(t, 256) / 255).astype(np.float32)
    back = ja.coords_to_image(c, T.to_array())
    assert np.abs(back[:68] - pts).max() < 1e-3
    crop = T.apply(t, 256)                                    # the mirrored face's left jaw is on the crop's left
    assert crop[:8, 0].mean() < crop[9:17, 0].mean()


def test_loader_workers_match_and_collate(tmp_path):
    for i in range(4): _write_aflw(tmp_path, f'image0000{i}')
    ds = ja.JVCRDataset(jd.load_aflw2000_3d(tmp_path), 'tiny', seed=3)
    b0 = next(iter(ja.make_loader(ds, batch_size=4, workers=0)))
    b2 = next(iter(ja.make_loader(ds, batch_size=4, workers=2)))
    for k in ('image', 'coords', 'params', 'pts'): assert torch.equal(b0[k], b2[k])
    assert [tuple(v.shape) for v in b2['volumes']] == [(4, 2, 16, 16), (4, 16, 16, 16)]
    assert b2['image'].dtype == torch.float32 and 0 <= b2['image'].min() and b2['image'].max() <= 1
    ds.set_epoch(1)
    b1 = next(iter(ja.make_loader(ds, batch_size=4, workers=2)))
    assert not torch.equal(b1['params'], b2['params'])
    back = ja.coords_to_image(b2['coords'], b2['params'], in_res=64)   # tiny preset: 64 input
    assert np.abs(back[:, :68] - b2['pts'].numpy()).max() < 1e-3
    with pytest.raises(ValueError, match='has no samples'): ja.JVCRDataset(jd.FaceSource('x', []))
    with pytest.raises(ValueError, match='unknown preset'): ja.JVCRDataset(ds.source, 'nope')


# ---------------------------------------------------------------- real data
def test_aflw2000_all_faces(root, aflw):
    """All 2000 load; yaw bins 1312/383/305; points = pt3d_68 - [1,1,0]; image->crop->image < 1e-3 px for every face."""
    assert len(aflw) == 2000 and not aflw.skipped
    assert jd.yaw_bin_counts(aflw) == (1312, 383, 305)
    pt3d = np.stack([sio.loadmat(str(s.extra['annotation']), variable_names=['pt3d_68'])['pt3d_68'].T for s in aflw])
    P = np.stack([s.pts for s in aflw])
    assert np.array_equal(P, pt3d.astype(np.float64) - [1, 1, 0])
    ds = ja.JVCRDataset(aflw, seed=0)                               # augmented crops, as training would see them
    err = 0.
    for i, s in enumerate(aflw):
        a = ds.params_of(i)
        T = ja.augment_crop(s.crop, a)
        coords = (T.apply(ja.target_points(s.pts, a.flip), 256) / 255).astype(np.float32)  # the stored target
        err = max(err, np.abs(ja.coords_to_image(coords, T.to_array()) - s.pts71).max())
        err = max(err, np.abs(s.crop.invert(s.crop.apply(s.pts, 256), 256) - s.pts).max())
    assert err < 1e-3, err


def test_loader_points_equal_pt3d(root, aflw):
    ds = ja.JVCRDataset(aflw, seed=1)
    for i in (0, 1, 1999):
        it = ds[i]
        pt3d = sio.loadmat(str(aflw[i].extra['annotation']))['pt3d_68'].T.astype(np.float64)
        np.testing.assert_array_equal(it['pts'].numpy(), pt3d - [1, 1, 0])
        assert np.abs(ja.coords_to_image(it['coords'], it['params'])[:68] - it['pts'].numpy()).max() < 1e-3


def test_aflw2000_3ddfa_boxes(root, aflw):
    src = jd.load_aflw2000_3d(root / 'aflw2000_3d', crop='3ddfa')
    raw = np.load(root / 'aflw2000_3d_benchmark' / 'AFLW2000-3D_crop.roi_box.npy')
    assert src[5].crop == CropTransform.from_box(raw[5] - 1, z_ref=float(aflw[5].pts[:, 2].mean()))


def test_300w_lp_sample(root):
    src = jd.load_300w_lp(root / '300w_lp_sample')
    s = src[0]
    err = np.linalg.norm(s.pts[:, :2] - s.extra['pt2d'], axis=1)
    assert err[17:].mean() < 5, err[17:].mean()          # inner face; the jaw follows the 2D silhouette instead
    assert abs(s.yaw + 44.0) < 0.1


def test_demo_pts_equal_aflw(root, aflw):
    demo = jd.load_pts_folder(root / 'jvcr_demo')
    assert np.abs(demo[0].pts - aflw[1].pts).max() < 1e-3 and demo[0].id == aflw[1].id


def test_bench_loader_runs(root):
    r = jb.bench_loader(root, n=20, workers=0, batch_size=10, preset='tiny')
    assert r['samples'] == 20 and r['samples_per_s'] > 0
