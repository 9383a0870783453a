"Tests of jvcr.raster (the z-buffer rasteriser, the RBF deformation, the dense mesh) and jvcr.synthetic (exact labels of rendered faces, determinism, the TOY face without data)."
import json
import os
import subprocess
import sys
import numpy as np
import pytest
from PIL import Image
from jvcr import raster as R
from jvcr import synthetic as S
from jvcr.testing import brute_zbuffer
from jvcr.facemodel import load_face_model, project

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_raster_names_still_import_from_synthetic():
    "Every public name of jvcr.raster (split out of jvcr.synthetic) is still importable from jvcr.synthetic, as the same object."
    missing = [n for n in R.__all__ if getattr(S, n, None) is not getattr(R, n)]
    assert not missing, missing


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_rasterizer_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    v = np.c_[rng.uniform(-5, 37, (300, 2)), rng.uniform(0, 10, 300)]
    t = rng.integers(0, 300, (200, 3))
    fr = R.NumpyRasterizer()(v, t, 32)
    ref_t, ref_z = brute_zbuffer(v, t, 32, tol=1e-12)
    m = ref_t >= 0
    np.testing.assert_array_equal(fr.mask, m)
    np.testing.assert_allclose(fr.depth[m], ref_z[m], atol=1e-9)
    np.testing.assert_allclose(fr.bary.sum(-1)[m], 1, atol=1e-12)


def test_rasterizer_watertight_grid():
    "A regular triangulated grid covering the image leaves no pixel centre uncovered (shared edges through pixel centres)."
    n = 9
    g = np.stack(np.meshgrid(np.linspace(-0.5, 15.5, n), np.linspace(-0.5, 15.5, n)), -1).reshape(-1, 2)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    tris = np.r_[np.c_[a, b, d], np.c_[a, d, c]]  # counter-clockwise seen by the camera (image y down) -> A < 0
    fr = R.NumpyRasterizer()(np.c_[g, np.zeros(len(g))], tris, 16, cull=False)
    assert fr.mask.all()


def test_rasterizer_bad_input():
    v, t = np.zeros((3, 3)), np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match=r'verts must have shape \(N, 3\)'): R.NumpyRasterizer()(v[:, :2], t, 8)
    with pytest.raises(ValueError, match='but there are 3 vertices'): R.NumpyRasterizer()(v, t + 1, 8)
    with pytest.raises(ValueError, match='integer array'): R.NumpyRasterizer()(v, t.astype(float), 8)
    with pytest.raises(ValueError, match='res must be a positive integer'): R.NumpyRasterizer()(v, t, -2)


def test_rbf_exact_at_centres():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(12, 3))
    M = R.rbf_weights(np.r_[c, rng.normal(size=(30, 3))], c)
    np.testing.assert_allclose(M[:12], np.eye(12), atol=1e-9)
    np.testing.assert_allclose(M.sum(1), 1, atol=1e-9)


def _check_exact(f, shape, mesh):
    res = f.image.shape[0]
    np.testing.assert_allclose(f.pts, project(shape, f.params['pose_para'], res), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(f.pts, f.verts[mesh.keypoints])  # the rasteriser's landmark vertices
    return np.abs(f.pts - project(shape, f.params['pose_para'], res)).max()


def test_toy_exact_and_deterministic_without_data(tmp_path, monkeypatch):
    "The TOY face needs no file: with JVCR_DATA pointing at an empty folder it renders, exactly and reproducibly."
    monkeypatch.setenv('JVCR_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='Model_Shape_Sim.mat'): S.load_dense_face()
    toy = S.toy_head()
    for seed in range(8):
        f = S.procedural_face(seed, keep_mesh=True)
        assert f.params['source'] == 'toy' and f.image.shape == (256, 256, 3) and f.image.dtype == np.uint8
        _check_exact(f, f.params['landmarks_model'], toy)
        assert -90 <= f.yaw <= 90
    a, b = S.procedural_face(5), S.procedural_face(np.random.default_rng(5))
    np.testing.assert_array_equal(a.image, b.image); np.testing.assert_array_equal(a.pts, b.pts)
    assert not np.array_equal(a.image, S.procedural_face(6).image)
    out = S.render_to_dir(2, tmp_path / 'toy', seed=3, progress=False, source='toy', res=64)
    meta = json.loads((out / 'points.json').read_text())
    assert meta['source'] == 'toy' and len(meta['faces']) == 2 and np.array(meta['faces'][0]['pts']).shape == (68, 3)
    assert Image.open(out / meta['faces'][1]['image']).size == (64, 64)


def test_toy_in_fresh_interpreter_without_data(tmp_path):
    "No hidden file access at import or render time: a fresh interpreter with an empty JVCR_DATA renders a toy face."
    code = "from jvcr.synthetic import procedural_face; f = procedural_face(0, res=96); print(f.image.shape, f.pts.shape)"
    env = dict(os.environ, JVCR_DATA=str(tmp_path))
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '(96, 96, 3) (68, 3)' in r.stdout


def test_bfm_exactness_every_sample(real_data):
    D = real_data
    fm, dense = load_face_model(D), S.load_dense_face(D)
    worst = 0.
    for seed in range(12):
        f = S.render_face(seed, model=fm, dense=dense, keep_mesh=True)
        worst = max(worst, _check_exact(f, fm.shape(f.params['alpha_shp'], f.params['alpha_exp']), dense))
        assert f.params['source'] == 'bfm' and f.image.shape == (256, 256, 3)
    assert worst < 1e-9


def test_bfm_determinism_and_yaw_range(real_data):
    D = real_data
    a, b = S.render_face(11), S.render_face(np.random.default_rng(11))
    np.testing.assert_array_equal(a.image, b.image); np.testing.assert_array_equal(a.pts, b.pts)
    yaws = [S.render_face(s, degradation=False).yaw for s in range(20)]
    assert min(yaws) < -45 and max(yaws) > 45 and all(-90 <= y <= 90 for y in yaws)
    p = S.render_face(1, yaw_range=(90, 90), pitch_range=(0, 0), roll_range=(0, 0))
    assert p.yaw == 90 and 10 < (~p.visible).sum() < 50  # a profile hides the far side


def test_dense_mean_matches_sparse_model(real_data):
    D = real_data
    dense, fm = R.load_dense_face(D), load_face_model(D)
    np.testing.assert_allclose(dense.landmarks, fm.mean, atol=0.01)  # mu_shape + u_exp == u_base at the keypoints
    kp = np.load(D / 'bfm' / 'keypoints_sim.npy').reshape(68, 3)
    np.testing.assert_array_equal(kp[:, 0] // 3, dense.keypoints)
    assert R._boundary_loops(dense.tris) == []


def test_render_to_dir_bfm_matches_render_face(real_data, tmp_path):
    out = S.render_to_dir(2, tmp_path / 'faces', seed=4, progress=False)
    meta = json.loads((out / 'points.json').read_text())
    f = S.render_face(np.random.default_rng([4, 1]))
    np.testing.assert_array_equal(np.asarray(Image.open(out / meta['faces'][1]['image'])), f.image)
    np.testing.assert_array_equal(np.array(meta['faces'][1]['pts']), f.pts)
    assert 'Basel Face Model' in meta['licence']
    with pytest.raises(ValueError, match="source must be 'bfm' or 'toy'"): S.render_to_dir(1, tmp_path, source='aflw')
