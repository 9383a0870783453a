"""Outputs that hold: no code cell that ends in a value without its stored output, and no typed result number in
a notebook's markdown.

**No stale output.** A code cell of a notebook under `nbs/` ends in a value when its last statement (parsed with
`ast`, after IPython's magics are turned into Python) is an expression, the cell does not end in `;`, and the
expression is not a call of something that returns None (`print`, `display`, the `test_*` assertions, `plt.*`,
`savefig`, `rmtree`, ...: `NO_VALUE_CALLS`). Such a cell must have at least one stored output. Excepted: cells
marked `#| data`, `#| slow`, `#| gpu`, `#| notest` or `#| eval: false` (their outputs depend on data or time that a
checkout may not have), and the notebooks in `nbs/reproduce/`: they are papermill notebooks, executed by
`jvcr reproduce`, whose outputs are not stored by design (their results go to `figures/`).

**No typed number.** A result-like number in a markdown cell is a decimal (digits with a decimal point) that is
followed by a unit (`%`, `ms`, `s`, a rate such as `/s` or `samples/s`, `x`, `fps`, `px`, `points`, `pts`), or any
decimal in a markdown table row. Such numbers must be computed in a code cell (e.g. `Markdown(f"...")` reading the results JSON or calibration file)
so they cannot go stale. A citation is allowed: the number may stay typed when the same sentence (or table row)
names its source (`SOURCE_WORDS`: the paper, a Table or Figure, PAPER.md, REFERENCE-CODE, 3DDFA, SynergyNet, or
'published' / 'reported'), and so may a goal set before measuring (the sentence says 'goal'). Code spans, fenced
code and LaTeX (`$...$`) are not prose and are not read. Integers (counts such as '68 points', settings such as
'10 % held out') are not result-like by this rule; a setting with decimals belongs in a code span (`tol=0.05`).

Run `python tests/test_outputs.py` to list every finding.
"""
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
SKIP_DIRECTIVES = {'data', 'slow', 'gpu', 'notest'}
NO_OUTPUT_DIRS = ('reproduce',)  # papermill notebooks: executed by `jvcr reproduce`, outputs not stored
NO_VALUE_CALLS = {'print', 'display', 'test', 'test_eq', 'test_ne', 'test_close', 'test_fail', 'test_is',
                  'test_eq_type', 'test_warns', 'test_stdout', 'test_shuffled', 'savefig', 'rmtree', 'unlink',
                  'mkdir', 'write_text', 'write_bytes', 'show', 'close', 'seed', 'manual_seed', 'update'}
SOURCE_WORDS = re.compile(r'\bpaper\b|PAPER\.md|\bTable\s+[IVX\d]|\bFig(?:ure|\.)\s*\d|REFERENCE-CODE|3DDFA|SynergyNet'
                          r'|\bpublished\b|\breported\b|\bgoal\b', re.I)
UNIT = r'(?:%|ms\b|s\b|seconds?\b|\w*/s\b|x\b|×|fps\b|px\b|points?\b|pts\b)'
DECIMAL = r'(?<![\w.])[-+−]?\d+\.\d+(?![\w.])'
RESULT_NUMBER = re.compile(r'(?<![\w.])[-+−]?\d+\.\d+(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?\s*' + UNIT)
TABLE_NUMBER = re.compile(DECIMAL)


def notebooks():
    "Every notebook under nbs/ (recursive), checkpoints left out."
    return sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


def _rel(p): return p.relative_to(ROOT).as_posix()


def _source(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']


def directives(src):
    "The cell's `#| ...` directive names (`eval: false` as 'eval: false')."
    return {re.sub(r'\s+', ' ', m.group(1).strip().lower()) for m in re.finditer(r'^\s*#\s*\|\s*(.+?)\s*$', src, re.M)}


def _python(src):
    "The cell as Python: IPython's magics and shell escapes turned into calls (left as they are without IPython)."
    try: from IPython.core.inputtransformer2 import TransformerManager
    except ImportError: return src
    return TransformerManager().transform_cell(src)


def _call_name(node):
    "Name of the called function (`f` for f(), `m` for a.b.m()), and the root name of an attribute chain."
    f, root = node.func, None
    while isinstance(f, ast.Attribute) and root is None:
        r = f.value
        while isinstance(r, (ast.Attribute, ast.Call, ast.Subscript)): r = r.value if not isinstance(r, ast.Call) else r.func
        root = getattr(r, 'id', None)
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, 'id', None)
    return name, root


def ends_in_value(src):
    "The last line of `src` if the cell ends in a value that Jupyter would display, else None."
    code = re.sub(r'#.*$', '', src, flags=re.M).rstrip()
    if not code or code.endswith(';'): return None
    try: tree = ast.parse(_python(src))
    except SyntaxError as e: return f'(cannot parse: {e})'
    if not tree.body or not isinstance(tree.body[-1], ast.Expr): return None
    v = tree.body[-1].value
    if isinstance(v, ast.Constant) and v.value is None: return None
    if isinstance(v, ast.Call):
        name, root = _call_name(v)
        if name in NO_VALUE_CALLS or (name or '').startswith('test_') or root in ('plt', 'get_ipython'): return None
    return code.splitlines()[-1].strip()


def missing_outputs(path):
    "(cell index, last line) of every code cell of `path` that ends in a value but stores no output."
    if any(NBS / d in path.parents for d in NO_OUTPUT_DIRS): return []
    out = []
    for i, cell in enumerate(json.loads(path.read_text())['cells']):
        if cell['cell_type'] != 'code' or cell.get('outputs'): continue
        src = _source(cell)
        d = directives(src)
        if d & SKIP_DIRECTIVES or 'eval: false' in d: continue
        last = ends_in_value(src)
        if last: out.append((i, last))
    return out


def _prose(src):
    "Markdown without fenced code, code spans, LaTeX and HTML comments."
    for pat in (r'```.*?```', r'<!--.*?-->', r'\$\$.*?\$\$', r'\$[^$\n]+\$', r'`[^`\n]*`'): src = re.sub(pat, ' ', src, flags=re.S)
    return src


def _units(src):
    "(is a table row, text) pieces: each table row, and each sentence of the prose."
    para = []
    for line in src.splitlines() + ['']:
        if line.lstrip().startswith('|'): yield True, line
        elif line.strip(): para.append(line.strip()); continue
        if para: yield from ((False, s) for s in re.split(r'(?<=[.!?;:])\s+(?=[A-Z(*])', ' '.join(para)))
        para = []


def typed_numbers(path):
    "(cell index, numbers, text) for every sentence or table row of `path`'s markdown with an uncited result number."
    out = []
    for i, cell in enumerate(json.loads(path.read_text())['cells']):
        if cell['cell_type'] != 'markdown': continue
        for table, text in _units(_prose(_source(cell))):
            if SOURCE_WORDS.search(text): continue
            found = [m.group(0).strip() for m in (TABLE_NUMBER if table else RESULT_NUMBER).finditer(text)]
            if table and re.fullmatch(r'[\s|:-]*', text): found = []
            if found: out.append((i, found, text.strip()))
    return out


@pytest.mark.parametrize('path', notebooks(), ids=_rel)
def test_no_stale_output(path):
    "A code cell that ends in a value has its output stored (see the module docstring for the rule)."
    bad = missing_outputs(path)
    assert not bad, f'{_rel(path)}: cells that end in a value but store no output (re-execute them): ' + \
        '; '.join(f'cell {i}: {last!r}' for i, last in bad)


@pytest.mark.parametrize('path', notebooks(), ids=_rel)
def test_no_typed_number(path):
    "Markdown carries no typed result number without its source named (see the module docstring for the rule)."
    bad = typed_numbers(path)
    assert not bad, f'{_rel(path)}: typed result numbers (compute them in a code cell, or name their source): ' + \
        '; '.join(f'cell {i}: {nums} in {text[:120]!r}' for i, nums, text in bad)


def test_rules(tmp_path):
    "The two rules on small examples: what counts as a value and as a result number, and what is excepted."
    for src in ('x = 1\nx', 'f(2)', '{k: 1 for k in "ab"}', 'fig', 'a.b(1)[0]'): assert ends_in_value(src), src
    for src in ('x = 1', 'print(x)', 'test_eq(1, 1)', 'fig;', 'plt.plot(x)', 'import os', 'def f(): pass',
                'assert x', 'None', 'f(1)  ;  # quiet', '%time f(1)'): assert ends_in_value(src) is None, src
    cell = lambda src, outs=(): dict(cell_type='code', source=src, outputs=list(outs))
    md = lambda src: dict(cell_type='markdown', source=src)
    def nb(cells):
        p = tmp_path / f'nb{len(list(tmp_path.iterdir()))}.ipynb'
        p.write_text(json.dumps(dict(cells=cells)))
        return p
    got = missing_outputs(nb([cell('1 + 1'), cell('#| data\nx'), cell('#| eval: false\nx'), cell('2', [{'output_type': 'stream'}])]))
    assert got == [(0, '1 + 1')], got
    got = typed_numbers(nb([md('We measured 3.5 % 2D NME. It ran at 12.0 ms per crop, 4.9 faces/s.'), md('The paper gives 3.5 % (Table II).'),
                            md('| a | b |\n|---|---|\n| ours | 0.42 |\n| 3DDFA | 0.5 |'), md('68 points, 10 % held out, `x = 1.5 ms`')]))
    assert [(i, n) for i, n, _ in got] == [(0, ['3.5 %']), (0, ['12.0 ms', '4.9 faces/s']), (2, ['0.42'])], got
    assert NBS / 'reproduce' / 'table1.ipynb' in notebooks() or not (NBS / 'reproduce').exists()
    assert missing_outputs(NBS / 'reproduce' / 'no_such.ipynb') == []    # papermill notebooks: not read at all


if __name__ == '__main__':
    for p in notebooks():
        for i, last in missing_outputs(p): print(f'{_rel(p)} cell {i}: no output for {last!r}')
        for i, nums, text in typed_numbers(p): print(f'{_rel(p)} cell {i}: typed {nums}: {text[:160]}')
