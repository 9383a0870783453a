"""Issue 11's acceptance on the demo faces: `jvcr predict` with boxes gives the NME that `jvcr evaluate` gives on those faces, and
without boxes (the face detector) it predicts both. The demo faces (jvcr_demo) are two AFLW2000-3D images with their .pts."""
import csv, json
import numpy as np
import pytest
from jvcr.cli import main
from jvcr.datasets import load_pts_folder, load_aflw2000_3d
from jvcr.inference import landmark_box
from jvcr.shipped import resolve_checkpoint, shipped_levers
from jvcr.evaluation import evaluate, ModelPredictor
from jvcr.metrics import nme_2d
from jvcr.model import load_checkpoint


def _demo(real_data):
    demo = load_pts_folder(real_data / 'jvcr_demo')
    assert len(demo) == 2
    return demo


def test_predict_with_boxes_equals_evaluate(real_data, tmp_path, capsys):
    "With the ground truth's tight boxes, `jvcr predict --boxes` has the 2D NME (3DDFA normaliser) that `jvcr evaluate --per-face` reports."
    demo = _demo(real_data)
    boxes = tmp_path / 'boxes.csv'
    with open(boxes, 'w', newline='') as f:
        w = csv.writer(f); w.writerow(['image', 'x0', 'y0', 'x1', 'y1'])
        for s in demo: w.writerow([str(s.image_path), *landmark_box(s.pts)])
    out = tmp_path / 'p.json'
    assert main(['predict', *[str(s.image_path) for s in demo], '--boxes', str(boxes), '--out', str(out), '--no-progress']) == 0
    got = {r['image']: r['faces'][0]['points'] for r in json.loads(out.read_text())['images']}
    pred = np.array([got[str(s.image_path)] for s in demo])
    ours = nme_2d(pred, np.stack([s.pts for s in demo]))
    # what `jvcr evaluate --crop reference` computes for the same two faces of AFLW2000-3D (same code, same shipped weights)
    ids = {s.image_path.stem for s in demo}
    faces = [f for f in load_aflw2000_3d(real_data / 'aflw2000_3d') if f.id in ids]
    assert sorted(f.id for f in faces) == sorted(ids)
    for f, s in zip(sorted(faces, key=lambda f: f.id), sorted(demo, key=lambda s: s.image_path.stem)):
        assert np.abs(f.pts - s.pts).max() < 1e-3, 'the .pts are the pt3d_68 points'
    csv_out = tmp_path / 'per_face.csv'
    flip = shipped_levers('default').get('flip', False)                  # `jvcr predict` takes the card's flip averaging (not its prior)
    evaluate(ModelPredictor(load_checkpoint(resolve_checkpoint('default'))[0], flip=flip), faces, progress=False, per_face_csv=csv_out)
    with open(csv_out) as fh: theirs = {r['id']: float(r['nme2d-box']) for r in csv.DictReader(fh)}
    # the .pts and the JSON hold 3 decimals (up to 5e-4 px off): points, boxes and normaliser move by that much
    for s, e in zip(demo, ours): assert abs(theirs[s.image_path.stem] - e) < 5e-5, (s.image_path.stem, theirs, e)
    # from the .mat points themselves (the evaluation's ground truth and boxes), the two agree to the JSON's rounding
    with open(boxes, 'w', newline='') as f:
        w = csv.writer(f); w.writerow(['image', 'x0', 'y0', 'x1', 'y1'])
        for s in faces: w.writerow([str(s.image_path), *landmark_box(s.pts)])
    assert main(['predict', *[str(s.image_path) for s in faces], '--boxes', str(boxes), '--out', str(out), '--no-progress', '--overwrite']) == 0
    got = {r['image']: r['faces'][0]['points'] for r in json.loads(out.read_text())['images']}
    exact = nme_2d(np.array([got[str(s.image_path)] for s in faces]), np.stack([s.pts for s in faces]))
    for s, e in zip(faces, exact): assert abs(theirs[s.id] - e) < 5e-5, (s.id, theirs, e)   # the JSON's points hold 3 decimals


def test_predict_with_the_detector(real_data, tmp_path, capsys):
    "Without boxes, the face detector finds both demo faces (one each); the JSON holds each face's points, box and score."
    from jvcr.detect import detector_available, DETECT_HINT
    if not detector_available(): pytest.skip(DETECT_HINT)
    demo = _demo(real_data)
    out = tmp_path / 'p.json'
    assert main(['predict', *[str(s.image_path) for s in demo], '--out', str(out), '--no-progress']) == 0
    msg = capsys.readouterr().out
    got = {r['image']: r['faces'] for r in json.loads(out.read_text())['images']}
    n = sum(map(len, got.values()))
    assert f"wrote {n} face{'s' * (n != 1)} of 2 of 2 images" in msg and f'({n} found by the face detector)' in msg, msg
    from jvcr.detect import box_iou
    for s in demo:
        faces = got[str(s.image_path)]                       # every face in the photo (one demo photo has a second, smaller one)
        assert faces and all(f['source'] == 'detector' for f in faces)
        f = max(faces, key=lambda f: float(box_iou(np.array(f['box']), np.array(landmark_box(s.pts)))))
        p = np.array(f['points'])
        assert p.shape == (68, 3) and np.isfinite(p).all()
        assert nme_2d(p[None], s.pts[None])[0] < 0.15       # a face, not noise: the detector path is usable
