"""jvcr.metrics: bad input, failures, the batch-split (streaming = one-shot) property, protocols, torch input, CSV."""
import csv
import numpy as np
import pytest
import fastcore.test as fct
import jvcr.metrics as M
from jvcr.landmarks import SUBSET_3DFAW_66, canonical_face_2d


def faces(seed=0, B=12, noise=3.):
    "Random 68-point truth in pixels and noisy predictions with a depth offset."
    rng = np.random.default_rng(seed)
    base = np.concatenate([canonical_face_2d() * 200 + 100, np.zeros((68, 1))], 1)
    gt = base + rng.normal(0, 5, (B, 68, 3)) + rng.normal(0, 30, (B, 1, 3))
    pred = gt + rng.normal(0, noise, gt.shape) + [0, 0, 1] * rng.normal(0, 20, (B, 1, 1))
    return pred, gt, rng.uniform(-120, 120, B)


# ---- bad input -------------------------------------------------------------------------------
def test_shape_mismatch_names_both_shapes():
    pred, gt, _ = faces()
    with pytest.raises(ValueError, match=r'pred \(12, 68, 3\) vs gt \(12, 66, 3\)'):
        M.nme_3d(pred, gt[:, :66])
    with pytest.raises(ValueError, match=r'pred \(5, 68, 3\) vs gt \(12, 68, 3\)'):
        M.MetricAccumulator().update(pred[:5], gt)


@pytest.mark.parametrize('bad', [np.zeros((68,)), np.zeros((2, 68, 4)), np.zeros((2, 2, 68, 3)), np.zeros((2, 1, 3))])
def test_bad_layout(bad):
    with pytest.raises(ValueError, match='expected faces of shape'):
        M.nme_2d(bad, bad)


def test_2d_points_refused_by_3d_metrics():
    pred, gt, _ = faces()
    with pytest.raises(ValueError, match=r'\(B, N, 3\)'):
        M.gte(pred[..., :2], gt[..., :2])
    fct.test_close(M.nme_2d(pred[..., :2], gt[..., :2]), M.nme_2d(pred, gt), eps=1e-12)


def test_nan_prediction_is_a_counted_failure_not_dropped():
    pred, gt, yaw = faces()
    pred[[2, 7], 30, 1] = np.nan
    for name in M.PROTOCOLS:
        e = M.get_protocol(name)(pred, gt)
        assert np.isnan(e).sum() == 2 and np.isnan(e[[2, 7]]).all(), name
    s = M.evaluate_all(pred, gt, yaw)['gte']
    assert (s['n'], s['n_failed']) == (12, 2)
    ok = M.gte(pred, gt)[~np.isnan(M.gte(pred, gt))]
    fct.test_close(s['mean'], ok.mean(), eps=1e-12)                     # mean over the valid faces
    assert sum(b['n_failed'] for b in s['bins'].values()) == 2
    assert sum(b['n'] for b in s['bins'].values()) == 12
    # the CED counts the failures as never below: the AUC equals that of the valid faces scaled by 10/12
    fct.test_close(s['auc']['0.1'], M.ced_auc(ok, 0.1) * 10 / 12, eps=1e-12)
    assert s['ced_at']['0.1'] <= 10 / 12


def test_all_failed_summary():
    s = M.summarize([np.nan, np.nan], yaw=[0, 50])
    assert s['n_failed'] == 2 and np.isnan(s['mean']) and np.isnan(s['mean_of_bins'])
    assert s['auc'] == {'0.07': 0.0, '0.1': 0.0}


@pytest.mark.parametrize('fn', [M.nme_2d, M.nme_3d, M.gte, lambda p, g, ids=None: M.cvgtce(p, g, 'box', ids=ids)])
def test_zero_normaliser_names_the_face(fn):
    pred, gt, _ = faces()
    gt[4] = gt[4, :1]                                                   # face 4 collapsed to one point
    with pytest.raises(ValueError, match=r'degenerate face.*#4$'):
        fn(pred, gt)
    ids = [f'img{i:03d}.jpg' for i in range(12)]
    with pytest.raises(ValueError, match=r"#4 \(id 'img004.jpg'\)"):
        fn(pred, gt, ids=ids)


def test_explicit_normaliser_array():
    pred, gt, _ = faces()
    fct.test_close(M.per_face_error(pred, gt, norm=M.box_size(gt)), M.nme_3d(pred, gt), eps=1e-12)
    with pytest.raises(ValueError, match=r'degenerate face.*#3'):
        M.cvgtce(pred, gt, norm=np.where(np.arange(12) == 3, 0., 1.))
    with pytest.raises(ValueError, match=r'expected \(12,\)'):
        M.cvgtce(pred, gt, norm=np.ones(5))


def test_accumulator_names_faces_by_running_index():
    pred, gt, _ = faces()
    gt[9, :, 0] = 1.                                                    # zero width
    acc = M.MetricAccumulator('nme2d-box').update(pred[:5], gt[:5])
    with pytest.raises(ValueError, match=r'#4 \(id 9\)'):              # 5th face of batch 2 = face 9 overall
        acc.update(pred[5:], gt[5:])
    assert len(acc) == 5                                                # nothing stored from the bad batch


def test_nan_ground_truth_is_an_error():
    pred, gt, _ = faces()
    gt[6, 0, 2] = np.nan
    with pytest.raises(ValueError, match='ground truth is not finite for face #6'):
        M.gte(pred, gt)


def test_unknown_names():
    pred, gt, _ = faces()
    with pytest.raises(ValueError, match=r"unknown protocol 'nme'; known: nme2d-box, nme3d-box, gte, cvgtce-eyes"):
        M.get_protocol('nme')
    with pytest.raises(ValueError, match='unknown protocol'):
        M.MetricAccumulator(['gte', 'gtee'])
    with pytest.raises(ValueError, match='unknown protocol'):
        M.evaluate_all(pred, gt, protocols=['bogus'])
    with pytest.raises(ValueError, match="unknown norm 'iod'"):
        M.per_face_error(pred, gt, norm='iod')
    with pytest.raises(ValueError, match="unknown align 'rigid'"):
        M.per_face_error(pred, gt, align='rigid')
    with pytest.raises(ValueError, match='dims must be 2 or 3'):
        M.per_face_error(pred, gt, dims=4)
    with pytest.raises(TypeError):
        M.cvgtce(pred, gt)                                             # the normaliser is required


def test_eye_indices():
    pred, gt, _ = faces()
    with pytest.raises(ValueError, match='pass eyes'):
        M.gte(pred[:, :10], gt[:, :10])
    with pytest.raises(ValueError, match='must be 2 indices'):
        M.gte(pred[:, :10], gt[:, :10], eyes=(0, 10))
    np.testing.assert_array_equal(M.gte(pred, gt, eyes=(36, 45)), M.gte(pred, gt))


def test_yaw_and_threshold_errors():
    with pytest.raises(ValueError, match='yaw must be finite'):
        M.yaw_bin([0, np.inf])
    with pytest.raises(ValueError, match='3 yaw values for 2 faces'):
        M.summarize([0.1, 0.2], yaw=[1, 2, 3])
    pred, gt, yaw = faces()
    acc = M.MetricAccumulator().update(pred[:3], gt[:3], yaw[:3])
    with pytest.raises(ValueError, match='every batch or for none'):
        acc.update(pred[3:], gt[3:])
    with pytest.raises(ValueError, match='2 yaw values for 9 faces'):
        acc.update(pred[3:], gt[3:], yaw[:2])
    with pytest.raises(ValueError, match='threshold must be > 0'):
        M.ced_auc([0.1], -1)


# ---- batch split -----------------------------------------------------------------------------
@pytest.mark.parametrize('splits', [(1, 7, 13), (13, 7, 1), (21,), (1,) * 21, (5, 0, 16)])
def test_streaming_equals_one_shot(splits):
    pred, gt, yaw = faces(seed=3, B=21)
    pred[[0, 11], 5, 0] = np.nan
    protos = list(M.PROTOCOLS)
    acc = M.MetricAccumulator(protos, thresholds=(0.05, 0.07, 0.1))
    lo = 0
    for n in splits:
        if n: acc.update(pred[lo:lo + n], gt[lo:lo + n], yaw[lo:lo + n])
        lo += n
    one = M.evaluate_all(pred, gt, yaw, protocols=protos, thresholds=(0.05, 0.07, 0.1))
    assert acc.compute() == one                                         # exact, not just close
    for k, e in acc.errors().items():
        np.testing.assert_array_equal(e, M.get_protocol(k)(pred, gt))


def test_streaming_without_yaw_and_with_ids(tmp_path):
    pred, gt, _ = faces(seed=4, B=10)
    acc = M.MetricAccumulator(['gte', 'cvgtce-eyes'])
    acc.update(pred[:3], gt[:3], ids=['a', 'b', 'c']).update(pred[3:], gt[3:])
    assert acc.compute() == M.evaluate_all(pred, gt, protocols=['gte', 'cvgtce-eyes'])
    assert 'bins' not in acc.compute()['gte']
    rows = list(csv.reader(open(acc.to_csv(tmp_path / 'faces.csv'))))
    assert rows[0] == ['id', 'gte', 'cvgtce-eyes']
    assert [r[0] for r in rows[1:]] == ['a', 'b', 'c'] + [str(i) for i in range(3, 10)]
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], M.gte(pred, gt))


def test_csv_with_yaw_and_failures(tmp_path):
    pred, gt, yaw = faces(seed=5, B=4)
    pred[1, 0, 0] = np.nan
    acc = M.MetricAccumulator('nme2d-box').update(pred, gt, yaw, ids=np.array(['w', 'x', 'y', 'z']))
    rows = list(csv.reader(open(acc.to_csv(tmp_path / 'f.csv'))))
    assert rows[0] == ['id', 'yaw', 'yaw_bin', 'nme2d-box']
    assert rows[2][0] == 'x' and rows[2][3] == 'nan'
    assert [r[2] for r in rows[1:]] == [M.BIN_NAMES[b] for b in M.yaw_bin(yaw)]
    acc.reset()
    assert len(acc) == 0


# ---- protocols, torch, real data ---------------------------------------------------------------
def test_protocols_match_named_functions():
    pred, gt, _ = faces()
    S = SUBSET_3DFAW_66
    expect = {'nme2d-box': M.nme_2d(pred, gt), 'nme3d-box': M.nme_3d(pred, gt), 'gte': M.gte(pred, gt),
              'cvgtce-eyes': M.cvgtce(pred, gt, 'eyes'), 'cvgtce-box': M.cvgtce(pred, gt, 'box'),
              'gte-66': M.gte(pred[:, S], gt[:, S]), 'cvgtce-eyes-66': M.cvgtce(pred[:, S], gt[:, S], 'eyes'),
              'cvgtce-box-66': M.cvgtce(pred[:, S], gt[:, S], 'box')}
    assert set(expect) == set(M.PROTOCOLS)
    for k, v in expect.items(): fct.test_close(M.get_protocol(k)(pred, gt), v, eps=1e-12)
    assert set(M.DEFAULT_PROTOCOLS) <= set(M.PROTOCOLS)


def test_custom_protocol():
    pred, gt, _ = faces()
    p = M.Protocol('gte2d', dims=2, norm='eyes2d', z_align=False)
    out = M.evaluate_all(pred, gt, protocols=[p, 'gte'])
    assert list(out) == ['gte2d', 'gte']
    fct.test_close(out['gte2d']['mean'], M.per_face_error(pred, gt, dims=2, norm='eyes2d').mean(), eps=1e-12)


def test_torch_input():
    torch = pytest.importorskip('torch')
    pred, gt, yaw = faces()
    tp, tg = torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32)
    fct.test_close(M.gte(tp, tg), M.gte(pred.astype(np.float32), gt.astype(np.float32)), eps=1e-12)
    fct.test_close(M.gte(tp, tg), M.gte(pred, gt), eps=1e-5)
    acc = M.MetricAccumulator().update(tp, tg, torch.tensor(yaw), ids=torch.arange(12))
    assert acc.compute()['gte']['n'] == 12 and acc._ids == list(range(12))


def test_json_ready_summary():
    import json
    pred, gt, yaw = faces()
    s = M.evaluate_all(pred, gt, yaw)
    assert json.loads(json.dumps(s)) == s


def test_real_aflw2000_protocol(real_data):
    "The AFLW2000-3D benchmark arrays: published yaw-bin sizes, no degenerate face, GT scores 0 everywhere."
    b = real_data / 'aflw2000_3d_benchmark'
    pts = np.load(b / 'AFLW2000-3D.pts68.npy').transpose(0, 2, 1)    # (2000, 68, 3)
    yaw = np.load(b / 'AFLW2000-3D.pose.npy')
    s = M.evaluate_all(pts, pts, yaw)
    assert [v['n'] for v in s['nme2d-box']['bins'].values()] == [1312, 383, 305]
    for k, v in s.items():
        assert v['n_failed'] == 0 and v['mean'] < 1e-9 and v['auc']['0.07'] > 1 - 1e-7, k
