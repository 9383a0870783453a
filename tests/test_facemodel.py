"Tests of jvcr.facemodel: rotation convention, projection, and reproduction of the real AFLW2000-3D / 300W-LP data."
import os
import numpy as np
import pytest
import scipy.io as sio
import fastcore.test as fct
from jvcr import facemodel as F

def test_pose_matrix_is_rotation():
    rng = np.random.default_rng(0)
    ang = rng.uniform(-np.pi, np.pi, (50, 3))
    R = F.pose_matrix(ang[:, 0], ang[:, 1], ang[:, 2])
    assert R.shape == (50, 3, 3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1, atol=1e-12)
    np.testing.assert_allclose(F.pose_matrix(0, 0, 0), np.eye(3))


def test_pose_matrix_convention():
    "3DDFA's RotationMatrix.m: R = Rx Ry Rz with transposed elementary rotations."
    x, y, z = 0.3, -0.4, 0.2
    Rx = np.array([[1, 0, 0], [0, np.cos(x), np.sin(x)], [0, -np.sin(x), np.cos(x)]])
    Ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(z), np.sin(z), 0], [-np.sin(z), np.cos(z), 0], [0, 0, 1]])
    np.testing.assert_allclose(F.pose_matrix(x, y, z), Rx @ Ry @ Rz, atol=1e-12)


def test_project_identity_pose():
    X = np.array([[0., 0, 0], [10, 20, 30], [-5, 4, -3]])
    P = F.project(X, [0, 0, 0, 100, 50, 7, 2.0], 200)
    # x - 1, (H + 1 - y) - 1, z: 0-based pixel centres, y down, z unchanged
    np.testing.assert_allclose(P, [[99, 150, 7], [119, 110, 67], [89, 142, 1]])
    batch = F.project(np.stack([X, X]), np.array([[0, 0, 0, 100, 50, 7, 2.0]] * 2), 200)
    np.testing.assert_allclose(batch, np.stack([P, P]))
    with pytest.raises(ValueError, match='pose_para'): F.project(X, [0, 0, 0], 200)


def test_mean_shape_identity_pose(real_data):
    fm = F.load_face_model()
    P = F.project(fm.mean, [0, 0, 0, 225, 225, 0, 1e-3], 450)
    np.testing.assert_allclose(P[:, 0], 1e-3 * fm.mean[:, 0] + 224)
    np.testing.assert_allclose(P[:, 1], 225 - 1e-3 * fm.mean[:, 1])
    assert P[30, 2] > P[0, 2] and P[30, 2] > P[16, 2]  # nose tip nearer the camera than the jaw ends
    assert P[8, 1] > P[27, 1]  # chin below the nose bridge in the image


def test_shape_and_sample(real_data):
    fm = F.load_face_model()
    a, b = fm.sample(np.random.default_rng(0), 7)
    assert a.shape == (7, 40) and b.shape == (7, 10)
    S = fm.shape(a, b)
    assert S.shape == (7, 68, 3)
    np.testing.assert_allclose(S[3], fm.mean + fm.shape_basis @ a[3] + fm.exp_basis @ b[3])
    np.testing.assert_allclose(fm.shape(a[:, :5]), fm.mean + fm.shape_basis[..., :5] @ a[:, :5, None][..., 0][:, None, None, :].squeeze(1).swapaxes(0, 0) if False else fm.shape(np.pad(a[:, :5], ((0, 0), (0, 35)))))
    with pytest.raises(ValueError, match='alpha_shp'): fm.shape(np.zeros(41))


def test_aflw2000_reproduction(real_data):
    D = real_data
    files = sorted((D / 'aflw2000_3d').glob('*.mat'))[::150]
    assert len(files) >= 10
    rep = F.reproduction_errors(files)
    assert rep['err2d'].mean() < 3.0 and rep['err2d'].max() < 8
    assert rep['err3d'].mean() < 3.5 and np.abs(rep['z_offset']).max() < 2
    # pts_from_mat agrees with the batched path (image height read from the .jpg)
    gt = sio.loadmat(files[0])['pt3d_68'].T - [1, 1, 0]
    np.testing.assert_allclose(F.pts_from_mat(files[0]), rep['pred'][0])
    assert np.linalg.norm(F.pts_from_mat(files[0])[:, :2] - gt[:, :2], axis=1).mean() < 3


def test_300w_lp_sample(real_data):
    D = real_data
    mat = D / '300w_lp_sample' / 'IBUG_image_008_1_0.mat'
    pts = F.pts_from_mat(mat)
    err = np.linalg.norm(pts[:, :2] - (sio.loadmat(mat)['pt2d'].T - 1), axis=1)
    # measured: 8.61 px mean / 49.4 max over all 68 (the 2D jaw follows the visible contour); 4.00 / 12.1 on points 17-67
    assert err[17:].mean() < 5 and err[17:].max() < 15 and err.mean() < 10


def test_mat_without_shape_para(tmp_path, real_data):
    bad = tmp_path / 'broken_face.mat'
    sio.savemat(bad, {'Pose_Para': np.zeros((1, 7)), 'Exp_Para': np.zeros((29, 1))})
    with pytest.raises(ValueError, match=r'broken_face\.mat has no Shape_Para'): F.pts_from_mat(bad, 450)
    with pytest.raises(FileNotFoundError, match='missing_face.mat'): F.pts_from_mat(tmp_path / 'missing_face.mat', 450)
    good = {'Pose_Para': np.zeros((1, 7)), 'Shape_Para': np.zeros((199, 1)), 'Exp_Para': np.zeros((29, 1))}
    with pytest.raises(ValueError, match='img_h is required'): F.pts_from_mat(good)


def test_missing_or_bad_bfm_file(tmp_path, real_data):
    (tmp_path / 'bfm').mkdir()
    for f in ('u_base.txt', 'w_shp_base.txt', 'param_mean.txt', 'param_std.txt'):
        (tmp_path / 'bfm' / f).write_bytes((real_data / 'bfm' / f).read_bytes())
    with pytest.raises(FileNotFoundError, match='w_exp_base.txt'): F.load_face_model(tmp_path)
    (tmp_path / 'bfm' / 'w_exp_base.txt').write_text('1 2 3\n')
    with pytest.raises(ValueError, match=r'w_exp_base\.txt has 3 values, expected 2040'): F.load_face_model(tmp_path)
