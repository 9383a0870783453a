"""jvcr.faces: small and turned faces. On the public-domain astronaut photo (tests/fixtures): the photo turned by 90
and 180 degrees and the face pasted small into a large canvas are found and give points close to the upright
prediction; an upright photo gives the same box and crop as before (`FaceDetector.face_boxes` + `box_crop`).
Tests that run the detector skip outside CI when MediaPipe is missing; in CI (CI=true) they fail instead."""
import numpy as np
import pytest
import fastcore.test as fct
import jvcr.detect as jdet
import jvcr.faces as jf
import jvcr.inference as ji
from jvcr.core import in_ci, repo_root
from jvcr.datasets import load_image
from jvcr.evaluation import predict_crops
from jvcr.geometry import CropTransform


@pytest.fixture(scope='module')
def finder():
    "A FaceFinder; skips (outside CI) when MediaPipe is missing."
    why = None if jdet.detector_available() else f"MediaPipe is missing: {jdet.DETECT_HINT}"
    if why: (pytest.fail if in_ci() else pytest.skip)(why)
    with jf.FaceFinder() as f: yield f


@pytest.fixture(scope='module')
def photo():
    return load_image(repo_root() / 'tests' / 'fixtures' / 'astronaut.jpg')


@pytest.fixture(scope='module')
def net():
    from jvcr.model import load_checkpoint
    from jvcr.shipped import resolve_checkpoint
    return load_checkpoint(resolve_checkpoint('default'))[0].eval()


def _points(net, img, T):
    return predict_crops(net, np.array(T.crop_image(img, net.config.in_res))[None], [T])[0, :, :2]


def _gap(p, ref):
    "Mean point distance in % of the face's size."
    return float(np.linalg.norm(p - ref, axis=-1).mean() / jf.face_side(ref) * 100)


def test_upright_unchanged(finder, photo):
    "An upright photo: the same boxes (and scores) as `face_boxes`, and the crop `box_crop` made, unless the eyes are tilted past the chosen angle."
    old, new = finder.face_boxes(photo), jf.find_faces(photo, finder)
    assert len(old) == len(new) == 1 and new[0].how == 'short-range'
    fct.test_eq([f.box for f in new], [d.box for d in old])
    fct.test_eq([f.score for f in new], [d.score for d in old])
    tilt = jf.eye_angle(finder.keypointed(photo)[0].eyes)
    expected = ji.box_crop(old[0].box) if abs(tilt) <= jf.read_faces_calibration()['chosen']['derotate_deg'] else \
        CropTransform.from_points(np.array(old[0].box).reshape(2, 2), 1.25, rot=tilt)
    fct.test_eq(jf.face_crop(new[0]), expected)


def test_face_crop_is_box_crop():
    "For an angle of 0, `face_crop` is `box_crop` for any box and expansion (the drop-in)."
    for box, e in (((10., 20., 50., 70.), 1.25), ((0.5, 3., 9., 4.), 1.), ((100., 100., 300., 250.), 1.4)):
        fct.test_eq(jf.face_crop(jf.Found(box, .9, 0., 'short-range'), e), ji.box_crop(box, e))


@pytest.mark.parametrize('k', [1, 3])
def test_turned_photo(finder, photo, net, k):
    "The photo turned by a quarter turn either way: found by turning it back, angle -90 k, points close to the upright prediction (upside down: a known limit, see 11e's revision)."
    ref = _points(net, photo, jf.face_crop(jf.find_faces(photo, finder)[0]))
    im = np.rot90(photo, k)
    f = jf.find_faces(im, finder)
    assert f and f[0].how == 'rotated', f
    assert abs(jf.wrap_angle(f[0].angle + 90 * k)) < 15, f[0].angle   # content turned counter-clockwise: the crop turns it back
    p = jf.unturn_points(_points(net, im, jf.face_crop(f[0])), k, photo.shape[:2])
    assert _gap(p, ref) < 4, _gap(p, ref)


def test_small_face_in_large_canvas(finder, photo, net):
    "The photo pasted at its own size into a gray 4000 x 3000 canvas: the old detector misses it, `find_faces` finds it (best first) with close points."
    H, W = photo.shape[:2]
    canvas = np.full((3000, 4000, 3), 128, np.uint8); canvas[2100:2100 + H, 2900:2900 + W] = photo
    assert finder.face_boxes(canvas) == []
    f = jf.find_faces(canvas, finder)
    assert f and f[0].how in ('tiles', 'full-range'), f
    ref = _points(net, photo, jf.face_crop(jf.find_faces(photo, finder)[0]))
    p = _points(net, canvas, jf.face_crop(f[0])) - (2900, 2100)
    assert _gap(p, ref) < 4, _gap(p, ref)
    fct.test_eq(jf.find_faces(canvas, finder, small=False), [])


def test_no_face(finder):
    "A blank image: no face, whatever is tried."
    fct.test_eq(jf.find_faces(np.full((600, 800, 3), 128, np.uint8), finder), [])


def test_turn_points_roundtrip():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 50, (10, 2))
    for k in range(-2, 6):
        assert np.allclose(jf.unturn_points(jf.turn_points(p, k, (40, 60)), k, (40, 60)), p)


def test_calibration_file():
    "The committed calibration: every threshold present, chosen on the pool (never AFLW2000-3D), MIN_FACE_PX exported from it."
    cal = jf.read_faces_calibration()
    fct.test_eq(set(cal['chosen']), {'min_face_px', 'tile_share', 'fallback', 'retry_score', 'turn_margin', 'derotate_deg'})
    fct.test_eq(jf.MIN_FACE_PX, cal['chosen']['min_face_px'])
    assert 'pool' in cal['provenance']['split'] and 'aflw2000' not in str(cal['provenance']).lower()
    assert cal['chosen']['fallback'] in ('tiles', 'full-range, tiles')
