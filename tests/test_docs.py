"""Argument docs that render: the share of public parameters that fastcore's `docments` (what nbdev's `show_doc`
shows) finds a comment for.

Public means: listed in a `jvcr` module's `__all__` (private `_names` left out), a function, a class's `__init__`
(a dataclass's fields), or a public method of such a class (patched ones included). `self`, `cls`, `*args` and
`**kwargs` are not counted. A parameter is documented by its own trailing comment, one argument per line:

    def f(x:int,      # what x is
          y=None):    # what y is

A single `;`-joined comment after `):` documents only the last parameter (or the return value).
Run `python tests/test_docs.py` for the share per module and every undocumented parameter.
"""
import importlib, inspect, pkgutil
from dataclasses import is_dataclass
from fastcore.docments import docments
import jvcr

MIN_SHARE = 0.90
SKIP_PARAMS = {'self', 'cls'}


def _module_names():
    "Names of the `jvcr` modules (`_modidx` and other private modules left out)."
    return sorted(f'jvcr.{m.name}' for m in pkgutil.iter_modules(jvcr.__path__) if not m.name.startswith('_'))


def _own(obj, modname=None):
    "Is `obj` (a function or class) defined in module `modname` (None: in any jvcr module)?"
    m = getattr(obj, '__module__', None) or ''
    return m == modname if modname else m.startswith('jvcr')


def _targets(mod):
    "(label, callable) pairs of `mod`'s public API: functions, class `__init__`s and public methods."
    seen = set()
    for name in getattr(mod, '__all__', []):
        if name.startswith('_'): continue
        obj = getattr(mod, name, None)
        if obj is None or not _own(obj, mod.__name__) or id(obj) in seen: continue
        seen.add(id(obj))
        if inspect.isfunction(obj): yield name, obj
        elif inspect.isclass(obj):
            if is_dataclass(obj) or '__init__' in vars(obj): yield f'{name}.__init__', obj
            for mname, m in vars(obj).items():
                if mname.startswith('_'): continue
                if isinstance(m, (staticmethod, classmethod)): m = m.__func__
                if inspect.isfunction(m) and _own(m): yield f'{name}.{mname}', m


def _params(f):
    "Names of the counted parameters of `f` (no self/cls, no *args/**kwargs)."
    try: sig = inspect.signature(f)
    except (TypeError, ValueError): return []
    return [p.name for p in sig.parameters.values() if p.name not in SKIP_PARAMS
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def coverage(modnames=None):
    "{module: (n documented, n counted, [undocumented 'func(param)'])}, and {module: import error} for any that fail."
    res, errors = {}, {}
    for modname in modnames or _module_names():
        try: mod = importlib.import_module(modname)
        except ImportError as e:
            errors[modname] = repr(e)
            continue
        n_doc, n, missing = 0, 0, []
        for label, f in _targets(mod):
            names = _params(f)
            if not names: continue
            docs = docments(f)
            for p in names:
                n += 1
                if docs.get(p) is not None: n_doc += 1
                else: missing.append(f'{label}({p})')
        res[modname] = (n_doc, n, missing)
    return res, errors


def report(res, errors=None, missing:bool=True):
    "Text table: the share per module, then (with `missing`) the undocumented parameters per module."
    lines = [f'{"module":24} {"documented":>10} {"of":>5} {"share":>6}']
    for m, (d, n, _) in res.items(): lines.append(f'{m:24} {d:10d} {n:5d} {d/max(n, 1):6.1%}')
    d, n = sum(v[0] for v in res.values()), sum(v[1] for v in res.values())
    lines.append(f'{"all":24} {d:10d} {n:5d} {d/max(n, 1):6.1%}')
    for m, e in (errors or {}).items(): lines.append(f'{m}: not imported ({e})')
    if missing:
        for m, (_, _, miss) in res.items():
            if miss: lines.append(f'\n{m}: no doc for ' + ', '.join(miss))
    return '\n'.join(lines)


def test_docments_counts():
    "The counter sees a per-line comment, and misses what a single `;` comment after `):` leaves undocumented."
    def per_line(a:int,  # first
                 b=None):  # second
        "Documented per line."
    def joined(a:int, b=None):  # first; second
        "Documented the old way."
    assert _params(per_line) == ['a', 'b']
    assert [docments(per_line)[p] for p in 'ab'] == ['first', 'second']
    assert docments(joined)['a'] is None


def test_public_parameters_documented():
    "At least 90 % of the public parameters of jvcr carry a docments comment."
    res, errors = coverage()
    assert res, 'no jvcr module found'
    assert not errors, f'modules that do not import (their parameters cannot be counted): {errors}'
    d, n = sum(v[0] for v in res.values()), sum(v[1] for v in res.values())
    print('\n' + report(res, errors, missing=False))
    assert n > 0 and d / n >= MIN_SHARE, (
        f'{d} of {n} public parameters documented ({d/n:.1%} < {MIN_SHARE:.0%}); write one argument per line with '
        f'its own trailing comment (fastcore docments).\n' + report(res, errors))


if __name__ == '__main__':
    print(report(*coverage()))
