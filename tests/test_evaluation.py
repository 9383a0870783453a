"""evaluate() and `jvcr evaluate`: protocols, failures, bad input, the JSON report."""
import json
import numpy as np
import pytest
from jvcr.cli import main
from jvcr.datasets import FaceSample
from jvcr.evaluation import evaluate, GroundTruthPredictor, MeanFacePredictor, run_evaluation
from jvcr.geometry import CropTransform
from jvcr.landmarks import canonical_face_3d
from jvcr.metrics import PROTOCOLS
from jvcr.evaluation import schematic_faces


def toy_faces(n=5, seed=0): return schematic_faces(n, seed, 'toy')   # schematic faces, no data needed


class Fixed:
    name = 'fixed'
    def __init__(self, fn): self.fn = fn
    def __call__(self, samples): return self.fn(np.stack([s.pts for s in samples]))


def test_ground_truth_is_zero_and_reports_every_protocol():
    r = evaluate(GroundTruthPredictor(), toy_faces(), progress=False)
    assert set(r['metrics']) == set(PROTOCOLS) and r['n'] == 5
    assert all(abs(m['mean']) < 1e-9 for m in r['metrics'].values())


def test_mean_face_predicts_its_own_shape_exactly():
    mean = canonical_face_3d() * [1, -1, 1]  # model convention: y up
    r = evaluate(MeanFacePredictor(mean=mean), toy_faces(), progress=False)
    assert r['metrics']['nme2d-box']['mean'] < 1e-9  # the toy faces ARE this shape, scaled into the box


def test_mean_face_floor_on_turned_toys_is_positive():
    "A frontal mean face cannot follow a turned head: its error grows with the turn (the floor is a real floor)."
    from jvcr.facemodel import pose_matrix
    mean = canonical_face_3d() * [1, -1, 1]
    errs = []
    for yaw in (0., 30., 60.):
        faces = []
        for s in toy_faces(6, seed=1):
            c = s.pts.mean(0)
            pts = (s.pts - c) @ pose_matrix(0., np.radians(yaw), 0.).T + c
            faces.append(FaceSample(s.id, 'toy', s.image_path, pts, CropTransform.from_points(pts), yaw))
        errs.append(evaluate(MeanFacePredictor(mean=mean), faces, progress=False)['metrics']['nme2d-box']['mean'])
    assert errs[0] < 1e-6 and 0.02 < errs[1] < errs[2], errs


def test_nan_predictions_are_counted_not_dropped():
    def nan_first(p):
        p = p + 1.0; p[0, 3] = np.nan; return p
    r = evaluate(Fixed(nan_first), toy_faces(6), batch_size=2, progress=False)
    m = r['metrics']['nme2d-box']
    assert m['n_failed'] == 3 and m['n'] == 6


def test_mismatched_shape_names_faces():
    with pytest.raises(ValueError, match=r'toy0\.\.toy1'):
        evaluate(Fixed(lambda p: p[:, :66]), toy_faces(2), progress=False)


def test_degenerate_face_names_it():
    faces = toy_faces(3)
    faces[1].pts[:] = faces[1].pts[0]  # all points on one spot: zero normaliser
    with pytest.raises(ValueError, match='toy1'):
        evaluate(GroundTruthPredictor(), faces, progress=False, protocols=['nme2d-box'])


def test_unknown_protocol_lists_known():
    with pytest.raises(ValueError, match='gte'):
        evaluate(GroundTruthPredictor(), toy_faces(1), protocols=['nme5d'], progress=False)


def test_cli_mean_face_all_aflw2000(real_data, tmp_path, capsys):
    out = tmp_path / 'mf.json'
    assert main(['evaluate', '--baseline', 'mean-face', '--root', str(real_data), '--json', str(out),
                 '--per-face', str(tmp_path / 'mf.csv'), '--no-progress']) == 0
    rep = json.loads(out.read_text())
    assert rep['n'] == 2000 and rep['crop'] == 'reference' and rep['dataset'] == 'aflw2000-3d'
    m = rep['metrics']['nme2d-box']
    assert [m['bins'][b]['n'] for b in m['bins']] == [1312, 383, 305]
    assert 0.05 < m['mean'] < 0.5 and m['n_failed'] == 0  # a floor, far from zero
    assert rep['provenance']['git_commit'] and len((tmp_path / 'mf.csv').read_text().splitlines()) == 2001


def test_cli_evaluate_needs_one_predictor(capsys):
    with pytest.raises(SystemExit):
        main(['evaluate', '--dataset', 'aflw2000-3d'])
