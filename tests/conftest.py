"""Shared pytest helpers: the real-data switch and the repository root."""
import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_root():
    "The real-data folder: $JVCR_DATA, else ../shared/data beside the checkout."
    return Path(os.environ.get('JVCR_DATA') or ROOT.parent / 'shared' / 'data')


@pytest.fixture
def real_data():
    "Path of the real data; skips outside CI when it is missing, fails in CI (where it is always present)."
    root = data_root()
    if not (root / 'aflw2000_3d').is_dir():
        msg = f"real data not found at {root} (set JVCR_DATA)"
        if os.environ.get('CI') == 'true': pytest.fail(msg + ': CI must have it')
        pytest.skip(msg)
    return root
