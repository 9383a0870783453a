"""Issue 11's acceptance on the demo faces: `jvcr predict` with boxes gives the NME that `jvcr evaluate` gives on those faces, and
without boxes (the face detector) it predicts both. The demo faces (jvcr_demo) are two AFLW2000-3D images with their .pts."""
import csv, json
import numpy as np
import pytest
from jvcr.cli import main
from jvcr.datasets import load_pts_folder, load_aflw2000_3d
from jvcr.inference import landmark_box
from jvcr.shipped import resolve_checkpoint
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
    got = json.loads(out.read_text())
    pred = np.array([got[str(s.image_path)] for s in demo])
    ours = nme_2d(pred, np.stack([s.pts for s in demo]))
    # what `jvcr evaluate --crop reference` computes for the same two faces of AFLW2000-3D (same code, same shipped weights)
    ids = {s.image_path.stem for s in demo}
    faces = [f for f in load_aflw2000_3d(real_data / 'aflw2000_3d') if f.id in ids]
    assert sorted(f.id for f in faces) == sorted(ids)
    for f, s in zip(sorted(faces, key=lambda f: f.id), sorted(demo, key=lambda s: s.image_path.stem)):
        assert np.abs(f.pts - s.pts).max() < 1e-3, 'the .pts are the pt3d_68 points'
    csv_out = tmp_path / 'per_face.csv'
    evaluate(ModelPredictor(load_checkpoint(resolve_checkpoint('default'))[0]), faces, progress=False, per_face_csv=csv_out)
    with open(csv_out) as fh: theirs = {r['id']: float(r['nme2d-box']) for r in csv.DictReader(fh)}
    # the .pts hold 3 decimals (up to 5e-4 px off the .mat points): boxes and normaliser move by that much
    for s, e in zip(demo, ours): assert abs(theirs[s.image_path.stem] - e) < 5e-5, (s.image_path.stem, theirs, e)
    # from the .mat points themselves (the evaluation's ground truth and boxes), the two agree to rounding
    with open(boxes, 'w', newline='') as f:
        w = csv.writer(f); w.writerow(['image', 'x0', 'y0', 'x1', 'y1'])
        for s in faces: w.writerow([str(s.image_path), *landmark_box(s.pts)])
    assert main(['predict', *[str(s.image_path) for s in faces], '--boxes', str(boxes), '--out', str(out), '--no-progress', '--overwrite']) == 0
    got = json.loads(out.read_text())
    exact = nme_2d(np.array([got[str(s.image_path)] for s in faces]), np.stack([s.pts for s in faces]))
    for s, e in zip(faces, exact): assert abs(theirs[s.id] - e) < 1e-6, (s.id, theirs, e)


def test_predict_with_the_detector(real_data, tmp_path, capsys):
    "Without boxes, the face detector finds both demo faces; the JSON holds each image's points, box and score."
    from jvcr.detect import detector_available, DETECT_HINT
    if not detector_available(): pytest.skip(DETECT_HINT)
    demo = _demo(real_data)
    out = tmp_path / 'p.json'
    assert main(['predict', *[str(s.image_path) for s in demo], '--out', str(out), '--no-progress']) == 0
    msg = capsys.readouterr().out
    assert 'wrote 2 of 2 predictions' in msg and "(2 with the face detector's box)" in msg, msg
    got = json.loads(out.read_text())
    for s in demo:
        p = np.array(got[str(s.image_path)])
        assert p.shape == (68, 3) and np.isfinite(p).all()
        assert nme_2d(p[None], s.pts[None])[0] < 0.15       # a face, not noise: the detector path is usable
