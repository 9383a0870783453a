"Head pose from 68 3D points (jvcr.pose): exact on posed reference faces, AFLW2000-3D's convention on the real data, clear errors."
import csv, hashlib, re
import numpy as np
import pytest
import fastcore.test as fct
from jvcr import pose as jp
from jvcr.datasets import FaceSample
from jvcr.geometry import CropTransform


def posed(ang, s=0.002, t=(200., -180., 30.)):
    "Image-space points (..., 68, 3) of the shipped reference face at (yaw, pitch, roll) degrees, drawn as AFLW2000-3D does."
    R = jp.pose_rotation(*np.moveaxis(np.asarray(ang, dtype=np.float64), -1, 0))
    return (s * np.einsum('...ij,nj->...ni', R, jp.pose_reference()) + t) * jp.IMAGE_TO_MODEL


def random_angles(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-89, 89, n), rng.uniform(-85, 85, n), rng.uniform(-85, 85, n)]


def test_rotation_round_trip():
    a = random_angles(300)
    fct.test_close(jp.rotation_angles(jp.pose_rotation(*a.T)), a, eps=1e-9)


@pytest.mark.parametrize('weights', [None, *jp.POSE_SETS])
def test_posed_faces_give_their_angles_exactly(weights):
    a = random_angles(100, seed=1)
    fct.test_close(jp.head_pose(posed(a), weights), a, eps=1e-7)
    fct.test_close(jp.head_pose(posed(a[3], s=0.05, t=(-40., 900., -7.)), weights), a[3], eps=1e-7)   # one face, other scale and place
    fct.test_eq(jp.head_pose(posed(a[3])).shape, (3,))


def test_signs_in_the_image():
    nose = lambda a: posed(a)[30, :2] - posed(a)[[36, 45, 48, 54], :2].mean(0)
    assert nose([30, 0, 0])[0] < nose([0, 0, 0])[0] - 10      # positive yaw: towards the image's left
    assert nose([0, 20, 0])[1] < nose([0, 0, 0])[1] - 10      # positive pitch: up
    eyes = posed([0, 0, 20])[[36, 45], 1]
    assert eyes[1] > eyes[0] + 10                               # positive roll: the image-right eye drops (clockwise)


def test_bad_input_is_named():
    fct.test_fail(lambda: jp.head_pose(np.zeros((68, 2))), contains='(68, 3) or (B, 68, 3)')
    fct.test_fail(lambda: jp.head_pose(np.zeros((21, 3))), contains='got (21, 3)')
    fct.test_fail(lambda: jp.head_pose(np.zeros((2, 3, 68, 3))), contains='got (2, 3, 68, 3)')
    p = posed(random_angles(4)); p[2, 7, 0] = np.nan; p[2, 9, 1] = np.inf
    fct.test_fail(lambda: jp.head_pose(p), contains='face(s) [2], point(s) [7, 9]')
    fct.test_fail(lambda: jp.head_pose([['a'] * 3] * 68), contains='not numeric')
    fct.test_fail(lambda: jp.head_pose(posed([0, 0, 0]), weights='cheeks'), contains='unknown point set')
    fct.test_fail(lambda: jp.head_pose(posed([0, 0, 0]), weights=[1, 2]), contains='at least 3 points')
    fct.test_fail(lambda: jp.head_pose(posed([0, 0, 0]), weights=np.full(68, -1.)), contains='>= 0')
    fct.test_fail(lambda: jp.head_pose(posed([0, 0, 0]), reference=np.zeros((68, 2))), contains='reference must have shape')


def test_pose_mae_filter_bins_and_failures():
    true = np.array([[10., 5, 0], [45, -20, 10], [80, 10, -5], [20, 0, 100], [5, 0, 0]])
    pred = true + [[1, 2, 3], [2, 0, 0], [4, 4, 4], [0, 0, 0], [np.nan, 0, 0]]
    r = jp.pose_mae(pred, true)
    fct.test_eq((r['n'], r['n_excluded'], r['n_failed']), (3, 1, 1))
    fct.test_close([r['yaw'], r['pitch'], r['roll'], r['mean']], [7 / 3, 2, 7 / 3, 20 / 9])
    fct.test_eq([b['n'] for b in r['bins'].values()], [1, 1, 1])
    fct.test_fail(lambda: jp.pose_mae(pred, true[:, :2]), contains='(N, 3)')
    fct.test_fail(lambda: jp.pose_mae(pred, pred), contains='true angles must be finite')


def test_evaluate_scores_pose_and_writes_csv_columns(tmp_path):
    from jvcr.evaluation import GroundTruthPredictor, POSE_COLUMNS, evaluate
    a = np.array([[10., 5, -3], [-50, 12, 8], [70, -15, 2], [100, 0, 0]])
    faces = [FaceSample(f'p{i}', 'toy', f'p{i}.jpg', p, CropTransform.from_points(p), yaw=x[0], extra=dict(pose=x))
             for i, (p, x) in enumerate(zip(posed(a), a))]
    r = evaluate(GroundTruthPredictor(), faces, batch_size=3, progress=False, per_face_csv=tmp_path / 'f.csv')['pose']
    fct.test_close(r['mean'], 0, eps=1e-6)
    fct.test_eq((r['n'], r['n_excluded']), (3, 1))
    with open(tmp_path / 'f.csv', newline='') as f: rows = list(csv.DictReader(f))
    assert set(POSE_COLUMNS) <= set(rows[0])
    fct.test_close([float(rows[1][k]) for k in ('pred_yaw', 'pred_pitch', 'pred_roll')], a[1], eps=1e-6)
    fct.test_eq([r_['pose_in_filter'] for r_ in rows], ['1', '1', '1', '0'])


def test_draw_pose_axes_at_the_nose():
    f = posed([0., 0., 0.], s=0.001, t=(100., -100., 0.))
    im = np.asarray(jp.draw_pose_axes(np.zeros((200, 200, 3), np.uint8), f, length=40, width=3))
    x, y = np.round(f[30, :2]).astype(int)
    fct.test_eq(im[y, x + 30].tolist(), list(jp.AXIS_COLORS[0]))   # x axis: to the image's right
    fct.test_eq(im[y - 30, x].tolist(), list(jp.AXIS_COLORS[1]))   # y axis: up
    fct.test_eq(im[y + 30, x].tolist(), [0, 0, 0])
    turned = np.asarray(jp.draw_pose_axes(np.zeros((200, 200, 3), np.uint8), f, pose=(-90., 0., 0.), length=40, width=3))
    fct.test_eq(turned[y, x + 30].tolist(), list(jp.AXIS_COLORS[2]))   # yawed -90 degrees: z (out of the face) points right
    fct.test_fail(lambda: jp.draw_pose_axes(im, np.stack([f, f])), contains='one face')


def test_shipped_reference_matches_its_readme_sha256():
    text = (jp.REFERENCE_FILE.parent / 'README.md').read_text()   # the licence note shipped beside it
    m = re.search(r'## pose_reference\.json.*?sha256 `([0-9a-f]{64})`', text, re.S)
    assert m, 'jvcr/weights/README.md has no sha256 for pose_reference.json'
    fct.test_eq(hashlib.sha256(jp.REFERENCE_FILE.read_bytes()).hexdigest(), m.group(1))


def test_reference_is_the_models_average_face(real_data):
    from jvcr.facemodel import load_face_model
    fm = load_face_model(real_data)
    X = fm.shape(fm.param_mean[12:52], fm.param_mean[52:])
    fct.test_close(jp.pose_reference(), X - X.mean(0), eps=0.051)


def test_convention_on_aflw2000_3d(real_data):
    "The true pt3d_68 give back the true Pose_Para angles (AFLW2000-3D's convention): a check, nothing is chosen here."
    from jvcr.datasets import load_aflw2000_3d
    faces = load_aflw2000_3d(real_data / 'aflw2000_3d')[:300]
    true = np.stack([s.extra['pose'] for s in faces])
    got = jp.head_pose(np.stack([s.pts for s in faces]))
    r = jp.pose_mae(got, true)
    assert max(r[k] for k in jp.POSE_NAMES) < 2.5, r
    inside = (np.abs(true) <= jp.POSE_LIMIT).all(1)
    for i in range(3): assert np.corrcoef(got[inside, i], true[inside, i])[0, 1] > 0.98


def test_pose_record_is_plain_floats():
    r = jp.pose_record(posed([25., -8., 4.]))
    fct.test_eq(list(r), ['yaw', 'pitch', 'roll'])
    assert all(type(v) is float for v in r.values())
    fct.test_close(list(r.values()), [25, -8, 4], eps=1e-7)
    fct.test_fail(lambda: jp.pose_record(posed(random_angles(2))), contains="one face's")
