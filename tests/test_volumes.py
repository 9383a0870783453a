"""jvcr.volumes: compact coarse-to-fine target volumes, coordinate target, peak read-out, naive baseline."""
import math
import numpy as np
import pytest
import torch
import fastcore.test as fct
import jvcr.volumes as V
from jvcr.bench import bench_targets
from jvcr.geometry import CropTransform
from jvcr.testing import separated_points
from jvcr.landmarks import add_auxiliary, canonical_face_3d


@pytest.fixture
def face():
    pts = add_auxiliary(canonical_face_3d() * 180 + [130, 140, 0])
    return pts, CropTransform.from_points(pts[:68])


def test_nan_inf_points_raise():
    bad = np.zeros((2, 5, 3)); bad[1, 3, 2] = np.nan
    fct.test_fail(lambda: V.encode_volumes(bad), contains='point 3 of sample 1 is not finite')
    fct.test_fail(lambda: V.encode_volumes(torch.tensor([[0., 1, 2], [np.inf, 0, 0]])), contains='point 1 is not finite')
    with pytest.raises(ValueError): V.encode_volumes(np.full((4, 3), np.nan), quirks='reference')
    mask = np.ones((2, 5), bool); mask[1, 3] = False          # a missing point may hold NaN
    fct.test_eq(V.encode_volumes(bad, (4,), 16, valid=mask)[0][1], V.encode_volumes(bad[1, [0, 1, 2, 4]], (4,), 16)[0])


def test_bad_arguments():
    fct.test_fail(lambda: V.encode_volumes(np.zeros((5, 2))), contains='(N, 3) or (B, N, 3)')
    fct.test_fail(lambda: V.encode_volumes(np.zeros((5, 3)), depth_res=()), contains='positive ints')
    fct.test_fail(lambda: V.encode_volumes(np.zeros((5, 3)), sigma=0), contains='sigma')
    fct.test_fail(lambda: V.encode_volumes(np.zeros((5, 3)), quirks='paper'), contains='quirks')
    fct.test_fail(lambda: V.encode_volumes(np.zeros((2, 5, 3)), valid=np.ones(5, bool)), contains='valid must have shape (2, 5)')
    fct.test_fail(lambda: V.volume_peaks(np.zeros((1, 4, 4, 4))), contains='(d, R, R)')


@pytest.mark.parametrize('depth_res,res', [((2, 8, 16), 16), ((1, 2, 4, 64), 64), ((64,), 64), (3, 8), ((5, 1, 9), 12)])
@pytest.mark.parametrize('quirks', ['none', 'reference'])
def test_shapes_any_depth_tuple(depth_res, res, quirks):
    pts = np.random.default_rng(0).uniform(0, res, (4, 7, 3))
    ds = (depth_res,) if isinstance(depth_res, int) else depth_res
    vols = V.encode_volumes(pts, depth_res, res, quirks=quirks)
    fct.test_eq([tuple(v.shape) for v in vols], [(4, d, res, res) for d in ds])
    fct.test_eq([v.dtype for v in vols], [torch.float32] * len(ds))
    assert all(float(v.max()) <= 1 and float(v.min()) >= 0 for v in vols)
    fct.test_eq([tuple(v.shape) for v in V.encode_volumes(pts[0], depth_res, res, quirks=quirks)], [(d, res, res) for d in ds])


@pytest.mark.parametrize('quirks', ['none', 'reference'])
def test_batch_matches_single(quirks):
    pts = np.random.default_rng(1).uniform(-5, 21, (3, 11, 3))
    batch = V.encode_volumes(torch.from_numpy(pts), (2, 8, 16), 16, quirks=quirks, crop_px=np.array([90., 120, 150]))
    for i in range(3):
        for b, s in zip(batch, V.encode_volumes(pts[i], (2, 8, 16), 16, quirks=quirks, crop_px=[90., 120, 150][i])):
            fct.test_eq(b[i], s)


def test_exact_subvoxel_gaussian_and_max_merge():
    v = V.encode_volumes(np.array([[20.25, 40.5, 31.5]]), (64,))[0]
    fct.test_close(float(v[31, 40, 20]), math.exp(-(0.25 ** 2 + 0.5 ** 2 + 0.5 ** 2) / 2), eps=1e-6)
    two = V.encode_volumes(np.array([[10., 10, 10], [11, 10, 10]]), (64,))[0]
    fct.test_close(two[10, 10, 9:13], torch.tensor([math.exp(-0.5), 1., 1., math.exp(-0.5)]), eps=1e-6)  # max, not sum


def test_round_trip_peaks_within_half_voxel():
    pts = separated_points(20, 4, 60, 6)
    peaks = V.volume_peaks(V.encode_volumes(pts)[-1])
    idx, err = V.match_peaks(peaks, pts)
    fct.test_eq((len(peaks), len(set(idx.tolist()))), (20, 20))
    assert np.abs(err).max() < 0.5
    assert np.abs(err).max() < 1e-3   # the log-parabola fit is exact for a Gaussian


def test_round_trip_face_isolated_points(face):
    pts, T = face
    vols, _ = V.make_targets(pts, T)
    p64 = T.apply(pts, 64)
    nn = np.sort(np.linalg.norm(p64[:, None] - p64[None], axis=-1), 1)[:, 1]
    iso = nn > 4
    assert iso.sum() >= 20
    _, err = V.match_peaks(V.volume_peaks(vols[-1]), p64[iso])
    assert np.abs(err).max() < 0.5


def test_reference_quirks():
    one = V.encode_volumes(np.array([[31.5, 31.5, 31.5]]), quirks='reference')   # the crop centre
    fct.test_eq([np.unravel_index(int(v.argmax()), v.shape) for v in one], [(0, 31, 31), (0, 31, 31), (1, 31, 31), (31, 31, 31)])
    fct.test_eq([float(v.max()) for v in one], [1.] * 4)                             # integer centre: peak exactly 1
    # d = 2 carries (almost) no depth: every point within the volume's depth lands in slice 0
    pts = np.random.default_rng(3).uniform([8, 8, 2], [56, 56, 60], (50, 3))
    d2 = V.encode_volumes(pts, (2,), quirks='reference', crop_px=200.)[0]
    fct.test_close(d2[1], d2[0] * math.exp(-0.5), eps=1e-6)
    ours = V.encode_volumes(pts, (2,))[0]                                            # quirks='none' keeps depth
    assert (ours[1] - ours[0] * math.exp(-0.5)).abs().max() > 0.3
    # a point in front of the volume (k_ref <= -1) wraps in the uint8 cast and vanishes
    fct.test_eq(float(V.encode_volumes(np.array([[30., 30, -1.]]), (64,), quirks='reference')[0].max()), 0.)
    # read-out with the documented shift: within 0.5 voxel
    pts = separated_points(20, 4, 60, 6, seed=5)
    peaks = V.volume_peaks(V.encode_volumes(pts, quirks='reference', crop_px=180.)[-1], quirks='reference', crop_px=180.)
    assert np.abs(V.match_peaks(peaks, pts)[1]).max() <= 0.5 + 1e-9


@pytest.mark.parametrize('crop_px', [None, 213.7])
def test_naive_agrees_with_reference_mode(crop_px):
    pts = np.random.default_rng(4).uniform(-8, 72, (71, 3))
    for a, b in zip(V.encode_volumes(pts, quirks='reference', crop_px=crop_px), V.naive_volumes(pts, crop_px=crop_px)):
        fct.test_close(a, torch.from_numpy(b), eps=1e-6)


def test_coord_target_and_make_targets(face):
    pts, T = face
    vols, xyz = V.make_targets(pts, T)
    fct.test_eq([tuple(v.shape) for v in vols], [(1, 64, 64), (2, 64, 64), (4, 64, 64), (64, 64, 64)])
    fct.test_close(V.coords_to_crop(xyz).numpy(), T.apply(pts, 256), eps=1e-3)
    fct.test_close(T.invert(V.coords_to_crop(xyz).double().numpy(), 256), pts, eps=1e-3)
    bv, bc = V.make_targets_batch(pts[None].repeat(2, 0), [T, T])
    for a, b in zip(bv, vols): fct.test_eq(a[1], b)


def test_make_targets_duck_typed_config(face):
    pts, T = face
    class Cfg: depth_res, in_res, out_res, sigma, quirks, n_points = (2, 16), 64, 16, 1.0, 'reference', 71
    vols, xyz = V.make_targets(pts, T, cfg=Cfg())
    fct.test_eq([tuple(v.shape) for v in vols], [(2, 16, 16), (16, 16, 16)])
    fct.test_close(V.coords_to_crop(xyz).numpy(), T.apply(pts, 64), eps=1e-3)
    fct.test_fail(lambda: V.make_targets(pts[:68], T, cfg=Cfg()), contains='add_auxiliary')
    fct.test_fail(lambda: V.make_targets(pts, T, cfg=object()), contains='cfg must have attributes')


def test_bench_keys():
    res = bench_targets(n_faces=2, naive_faces=1, batch=2, repeats=1, depth_res=(1, 16), res=16)
    assert {'targets_per_s', 'naive_targets_per_s', 'speedup', 'threads'} <= set(res)
    assert res['targets_per_s'] > 0 and res['threads'] == 1
