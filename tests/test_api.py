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


def _notebook_order():
    "{module: notebook stem} from the `#| default_exp` line of every notebook."
    import re
    nbs = Path(__file__).resolve().parents[1] / 'nbs'
    out = {}
    for nb in sorted(nbs.glob('*.ipynb')):
        m = re.search(r'#\| default_exp (\w+)', nb.read_text())
        if m: out[m.group(1)] = nb.stem
    return out


def _jvcr_imports(mod):
    "Every jvcr module that `mod` imports, at module level or inside functions (parsed, not run)."
    import ast
    tree = ast.parse((Path(__file__).resolve().parents[1] / 'jvcr' / f'{mod}.py').read_text())
    deps = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            base = (n.module or '')
            if n.level == 1: deps.add(base.split('.')[0])
            elif base == 'jvcr': deps |= {a.name for a in n.names}
            elif base.startswith('jvcr.'): deps.add(base.split('.')[1])
        elif isinstance(n, ast.Import):
            deps |= {a.name.split('.')[1] for a in n.names if a.name.startswith('jvcr.')}
    return deps


def test_notebook_order_is_dependency_order():
    "A module imports only modules whose notebooks come before its own: no cycles, and the docs read top-down."
    order = _notebook_order()
    assert len(order) == len(MODULES), sorted(set(MODULES) ^ set(order))
    late = [(m, d) for m in order for d in _jvcr_imports(m) if d in order and order[d] >= order[m] and d != m]
    assert not late, f"modules importing later notebooks' modules: {late}"


def test_no_private_names_across_modules():
    "No module imports another module's private (underscore) name."
    import ast
    bad = []
    for m in MODULES:
        tree = ast.parse((Path(__file__).resolve().parents[1] / 'jvcr' / f'{m}.py').read_text())
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or '').lstrip('.') != '__future__' and (n.level or (n.module or '').startswith('jvcr')):
                bad += [(m, n.module, a.name) for a in n.names if a.name.startswith('_')]
            if isinstance(n, ast.Attribute) and n.attr.startswith('_') and not n.attr.startswith('__') \
               and isinstance(n.value, ast.Name) and n.value.id in ('jd', 'datasets', 'jt', 'training', 'jvcr'):
                bad.append((m, n.value.id, n.attr))
    assert not bad, bad
