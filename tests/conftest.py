"""Shared pytest helpers: the one switch for tests that need the research data, and the repository root.

A test that reads the research data takes the `real_data` fixture (the data root as a Path). It asks
`jvcr.core.data_status`, the same check that decides whether notebook cells marked `#| data` run
(`jvcr data flags`): outside CI a missing data root skips the test with the reason; in CI (CI=true), where the
data is always present, it fails.
"""
from pathlib import Path
import pytest
from jvcr.core import data_status, in_ci

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def real_data():
    "Path of the research data; skips outside CI when it is missing (saying why), fails in CI."
    root, why = data_status()
    if root is None:
        if in_ci(): pytest.fail(f"CI=true but the research data is missing: {why}")
        pytest.skip(f"needs the research data: {why} (set JVCR_DATA; README: Data and licences)")
    return root
