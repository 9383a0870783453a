"""The public API in a fresh interpreter: exported code must not depend on notebook-only names."""
import subprocess, sys
from pathlib import Path
import pytest

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / 'jvcr').glob('*.py') if not p.stem.startswith('_'))


@pytest.mark.parametrize('mod', MODULES)
def test_module_imports_fresh(mod):
    "Each module imports in a new interpreter and defines everything its __all__ promises."
    code = (f"import jvcr.{mod} as m\n"
            "missing = [n for n in getattr(m, '__all__', []) if not hasattr(m, n)]\n"
            "assert not missing, missing\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_console_script_help():
    "The installed console script `jvcr --help` works and lists the subcommands."
    exe = Path(sys.executable).with_name('jvcr')
    assert exe.exists(), f"console script not installed beside {sys.executable}: pip install -e ."
    r = subprocess.run([str(exe), '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and 'bench' in r.stdout and 'reproduce' in r.stdout, r.stdout + r.stderr
