"""The training pool: fixed split, weights, and AFLW2000-3D kept out."""
from pathlib import Path
import numpy as np
import pytest
from jvcr.datasets import FaceSample, FaceSource, load_aflw2000_3d
from jvcr.geometry import CropTransform
from jvcr.landmarks import canonical_face_3d
from jvcr.pool import TrainingPool, is_validation, default_pool, TEST_FOLDERS


def fake_source(name, n, folder='train_faces'):
    pts = canonical_face_3d() * 100 + [20, 20, 0]
    return FaceSource(name, [FaceSample(f'{name}{i}', name, Path(folder) / f'{i}.jpg', pts, CropTransform.from_points(pts))
                             for i in range(n)])


def test_split_is_stable_when_faces_are_added():
    small, big = fake_source('a', 50), fake_source('a', 500)
    p1, p2 = TrainingPool({'a': small}, val_fraction=0.2), TrainingPool({'a': big}, val_fraction=0.2)
    v1 = {s.id for s in p1.val()}
    v2 = {s.id for s in p2.val()}
    assert v1 == {i for i in v2 if int(i[1:]) < 50}


def test_weights_share_the_epoch():
    pool = TrainingPool({'a': fake_source('a', 40), 'b': fake_source('b', 10)}, {'a': 1, 'b': 3}, epoch_size=100)
    tr = pool.train()
    assert len(tr) == 100 and sum(s.source == 'b' for s in tr) == 75


def test_zero_weight_source_is_unused():
    pool = TrainingPool({'a': fake_source('a', 20), 'b': fake_source('b', 20)}, {'a': 1, 'b': 0})
    assert {s.source for s in pool.train()} == {'a'} and {s.source for s in pool.val()} <= {'a'}


@pytest.mark.parametrize('folder', TEST_FOLDERS)
def test_test_set_folders_are_refused(folder):
    with pytest.raises(ValueError, match='test set'):
        TrainingPool({'x': fake_source('x', 3, folder=f'/data/{folder}')})


def test_real_aflw2000_is_refused(real_data):
    faces = load_aflw2000_3d(real_data / 'aflw2000_3d')[:3]
    with pytest.raises(ValueError, match='test set'):
        TrainingPool({'aflw': faces})


def test_default_pool_has_no_test_face(real_data):
    pool = default_pool(real_data, limit=2000)                  # the first 2000 AFLW crops: the same code, quickly
    tr, va = pool.train(), pool.val()
    assert len(tr) + len(va) > 1900 and 100 < len(va) < 300
    test_ids = {s.id for s in load_aflw2000_3d(real_data / 'aflw2000_3d')}
    test_dir = (real_data / 'aflw2000_3d').resolve()
    for s in list(tr) + list(va):                # looked at independently of the guard the constructor applies
        assert test_dir not in Path(s.image_path).resolve().parents and s.source != 'aflw2000_3d'
        assert not set(Path(s.image_path).parts) & set(TEST_FOLDERS)
    # the AFLW crops are different photos: none of their file ids is an AFLW2000-3D id
    assert not {s.id for s in tr} & test_ids


def test_empty_pool_errors():
    with pytest.raises(ValueError, match='no sources'):
        TrainingPool({})
