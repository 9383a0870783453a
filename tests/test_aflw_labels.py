"Tests of jvcr.aflw_labels: the 21-point fit, failure reporting, the content-hash cache, and validation on real data."
import numpy as np
import pytest
import fastcore.test as fct
from jvcr import aflw_labels as L
from jvcr.facemodel import load_face_model
from jvcr.testing import write_aflw_folder
from jvcr.metrics import nme_2d


@pytest.fixture
def model(real_data):
    return load_face_model(real_data)


def test_mapping_tables():
    M = L.aflw21_matrix()
    fct.test_eq(M.shape, (21, 68))
    np.testing.assert_allclose(M.sum(1), 1)
    fct.test_eq(len(L.AFLW21_NAMES), 21)
    fct.test_eq(L.AFLW21_TO_68[6], (36,)); fct.test_eq(L.AFLW21_TO_68[11], (45,))  # image-left eye = iBUG 36


def test_synthetic_recovery(model):
    q, true68, yaw = L.synthetic_21(model, 64, seed=3)
    f = L.fit_points(q, np.ones((64, 21), bool), model, progress=False)
    assert f['ok'].all(), f['reason']
    assert nme_2d(f['pts'], true68).mean() < 0.02
    assert np.abs(f['yaw'] - yaw).mean() < 3


def test_degenerate_faces_excluded_and_reported(model):
    q, _, _ = L.synthetic_21(model, 4, seed=1)
    vis = np.ones((4, 21), bool)
    vis[0] = False; vis[0, [0, 6, 14, 17, 20]] = True           # 5 visible points
    vis[1] = False; vis[1, [0, 6, 12, 14, 16, 17, 20]] = True   # 5 face points + 2 ears (ears do not count)
    q[2] = np.random.default_rng(0).permutation(q[2])            # scrambled annotation
    f = L.fit_points(q, vis, model, progress=False)
    fct.test_eq(f['ok'].tolist(), [False, False, False, True])
    assert f['reason'][0].startswith('few points') and f['reason'][1].startswith('few points')
    assert f['reason'][2].startswith('residual')
    assert np.isnan(f['pts'][:3]).all() and np.isfinite(f['pts'][3]).all()


def test_bad_input_messages(model, tmp_path):
    with pytest.raises(ValueError, match=r'\(N, 21, 2\)'): L.fit_points(np.zeros((2, 20, 2)), np.ones((2, 20), bool), model)
    with pytest.raises(FileNotFoundError, match='lacks'): L.load_crops(tmp_path)


def test_cache_key_and_failures_list(model, tmp_path, monkeypatch):
    monkeypatch.setenv('JVCR_CACHE', str(tmp_path / 'cache'))
    q, _, _ = L.synthetic_21(model, 3, seed=2)
    vis = np.ones((3, 21), bool); vis[1] = False; vis[1, :4] = True
    folder = write_aflw_folder(tmp_path / 'tiny', q, vis)
    a = L.fit_folder(folder, model, progress=False)
    assert a.path.is_file() and a.path.parent == tmp_path / 'cache'
    fct.test_eq(a.n_failed, 1); fct.test_eq(a.failures[0][0], 'face001.jpg')
    b = L.fit_folder(folder, model, progress=False)                       # from the cache
    fct.test_eq(b.key, a.key); np.testing.assert_array_equal(a.ok, b.ok)
    write_aflw_folder(folder, q + 0.25, vis)                                   # changed input -> new key
    assert L.fit_folder(folder, model, progress=False).key != a.key
    assert L.fit_folder(folder, model, L.FitSettings(sigma=0.05), progress=False).key != a.key


def test_validation_on_aflw2000(real_data):
    r = L.validate_labels(real_data, progress=False)
    fct.test_eq(r['n'], 2000)
    assert r['n_failed'] == len(r['failures']) < 40
    fct.test_eq(sum(b['n'] for b in r['nme2d']['bins'].values()), 2000)
    assert r['nme2d']['mean'] < 3.5 and r['nme2d']['mean_of_bins'] < 4.0
    assert r['nme3d']['mean'] < 6.0
