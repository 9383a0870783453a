"Model, config, checkpoint and reference-parity tests for jvcr.hourglass / regressor / model / reference_arch."
import os, pickle
import numpy as np
import pytest
import torch
import fastcore.test as fct
from jvcr import model as jm
from jvcr.model import (JVCR, JVCRConfig, PRESETS, CheckpointError, get_config, count_params, count_macs,
                        save_checkpoint, load_checkpoint)
from jvcr.bench import bench_model
from jvcr.regressor import CoordRegressor
from jvcr.reference_arch import build_reference, load_into_reference, load_from_reference, randomize_bn_stats


@pytest.fixture(scope='module')
def paper_meta():
    with torch.device('meta'): return JVCR('paper')


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return randomize_bn_stats(JVCR('tiny')).eval()


# ---- architecture ------------------------------------------------------------------------------
def test_paper_param_counts(paper_meta):
    hg, reg = count_params(paper_meta.hourglass), count_params(paper_meta.regressor)
    assert abs(hg / 13.01e6 - 1) < 1e-3 and abs(reg / 19.46e6 - 1) < 1e-3
    fct.test_eq((hg, reg), (13_010_119, 19_460_629))


def test_paper_macs(paper_meta):
    fct.test_eq(count_macs(paper_meta), 19_222_549_760)   # about 19.3 G in PAPER.md


def test_paper_output_shapes(paper_meta):
    vols, coords = paper_meta(torch.empty(2, 3, 256, 256, device='meta'))
    fct.test_eq([tuple(v.shape) for v in vols], [(2, d, 64, 64) for d in (1, 2, 4, 64)])
    fct.test_eq(tuple(coords.shape), (2, 71, 3))


def test_small_presets():
    tiny, small = JVCR('tiny'), JVCR('cpu_small')
    assert count_params(tiny) < 1e6 and 1e6 < count_params(small) < 5e6
    vols, coords = tiny(torch.rand(2, 3, 64, 64))
    fct.test_eq([tuple(v.shape) for v in vols], [(2, 2, 16, 16), (2, 16, 16, 16)])
    fct.test_eq(tuple(coords.shape), (2, 71, 3))
    vols, coords = small.eval()(torch.rand(1, 3, 128, 128))
    fct.test_eq([tuple(v.shape) for v in vols], [(1, d, 32, 32) for d in (1, 2, 4, 32)])


def test_channels_last_same_function():
    torch.manual_seed(0)
    a = randomize_bn_stats(JVCR('tiny')).eval()
    b = JVCR('tiny', channels_last=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode(): (va, ca), (vb, cb) = a(x), b(x)
    fct.test_close(ca, cb, eps=1e-5)
    for p, q in zip(va, vb): fct.test_close(p, q, eps=1e-5)


def test_backward_runs(tiny):
    tiny.train()
    vols, coords = tiny(torch.rand(2, 3, 64, 64))
    (sum(v.square().mean() for v in vols) + coords.square().mean()).backward()
    assert all(p.grad is not None for p in tiny.parameters())


# ---- config ------------------------------------------------------------------------------------
def test_config_defaults_and_presets():
    c = JVCRConfig()
    fct.test_eq((c.depth_res, c.features, c.hg_depth, c.n_blocks, c.n_points, c.in_res, c.out_res, c.sigma, c.quirks, c.n_stacks),
                ((1, 2, 4, 64), 256, 4, 1, 71, 256, 64, 1.0, 'none', 4))
    fct.test_eq(PRESETS['paper'], c)
    fct.test_eq(get_config('reference_code').quirks, 'reference')
    fct.test_eq(get_config('tiny', n_points=68).n_points, 68)
    with pytest.raises(ValueError, match=r"unknown preset 'x'; known presets: \['cpu_small', 'cpu_small_flat', 'cpu_small_two_stage', 'paper', 'paper_flat'"):
        get_config('x')


@pytest.mark.parametrize('kw,field', [
    (dict(in_res=200), 'in_res'), (dict(depth_res=(1, 2, 32)), 'depth_res'), (dict(depth_res=()), 'depth_res'),
    (dict(reg_channels=(64,)), 'reg_channels'), (dict(features=30), 'features'), (dict(hg_depth=7), 'hg_depth'),
    (dict(out_res=48, in_res=192, depth_res=(48,)), 'out_res'), (dict(sigma=-1.0), 'sigma'), (dict(quirks='x'), 'quirks'),
    (dict(n_points=0), 'n_points'), (dict(n_blocks=1.5), 'n_blocks')])
def test_config_validation_names_field(kw, field):
    with pytest.raises(ValueError, match=f'JVCRConfig.{field}='): JVCRConfig(**kw)


def test_regressor_channel_mismatch():
    with pytest.raises(ValueError, match=r'needs log2\(32\) - 2 = 3 stride-2 layers'): CoordRegressor(32, channels=(8, 16))


# ---- input checking ----------------------------------------------------------------------------
@pytest.mark.parametrize('x,exc,msg', [
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, r'x.float\(\) / 255'),
    (torch.zeros(3, 64, 64), ValueError, r'\(B, 3, 64, 64\), got \(3, 64, 64\)'),
    (torch.zeros(1, 64, 64, 3), ValueError, 'channels-last images'),
    (torch.zeros(1, 3, 32, 32), ValueError, r'got \(1, 3, 32, 32\)'),
    (np.zeros((1, 3, 64, 64), np.float32), TypeError, 'got ndarray'),
    (torch.zeros(1, 3, 64, 64, dtype=torch.float64), TypeError, 'differs from the model')])
def test_bad_input(tiny, x, exc, msg):
    with pytest.raises(exc, match=msg): tiny(x)


# ---- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_round_trip(tiny, tmp_path):
    p = save_checkpoint(tmp_path / 'sub' / 'm.pt', tiny, epoch=4, opt={'lr': 1e-3, 'hist': [1.0, 2.0]})
    raw = torch.load(p, weights_only=True)
    fct.test_eq((raw['format'], raw['format_version'], raw['config']['depth_res']), ('jvcr', 1, (2, 16)))
    m, extra = load_checkpoint(p)
    fct.test_eq(extra, {'epoch': 4, 'opt': {'lr': 1e-3, 'hist': [1.0, 2.0]}})
    fct.test_eq(m.config, tiny.config)
    assert not m.training
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode(): (va, ca), (vb, cb) = tiny(x), m(x)
    fct.test_eq(ca, cb)
    for a, b in zip(va, vb): fct.test_eq(a, b)
    fct.test_eq(sorted(os.listdir(tmp_path / 'sub')), ['m.pt'])


def test_atomic_save_keeps_old_file(tiny, tmp_path, monkeypatch):
    p = save_checkpoint(tmp_path / 'm.pt', tiny, epoch=1)
    before = p.read_bytes()
    def boom(obj, f, *a, **k):
        f.write(b'half a checkpoint'); raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(OSError, match='disk full'): save_checkpoint(p, JVCR('tiny'), epoch=2)
    monkeypatch.undo()
    fct.test_eq(p.read_bytes(), before)
    fct.test_eq(os.listdir(tmp_path), ['m.pt'])
    fct.test_eq(load_checkpoint(p)[1], {'epoch': 1})


def test_save_rejects_unloadable_extra(tiny, tmp_path):
    with pytest.raises(TypeError, match=r"extra\['m'\]\[1\] is a numpy.float64"):
        save_checkpoint(tmp_path / 'm.pt', tiny, m=[1.0, np.float64(2)])
    fct.test_eq(os.listdir(tmp_path), [])


def test_save_unwraps_wrappers(tiny, tmp_path):
    class Wrap(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.module = m
    save_checkpoint(tmp_path / 'm.pt', Wrap(tiny))
    fct.test_eq(load_checkpoint(tmp_path / 'm.pt')[0].config, tiny.config)
    with pytest.raises(TypeError, match='expects a JVCR model'): save_checkpoint(tmp_path / 'x.pt', torch.nn.Linear(2, 2))


@pytest.fixture()
def good(tiny, tmp_path):
    p = save_checkpoint(tmp_path / 'good.pt', tiny)
    return p, torch.load(p, weights_only=True)


def _put(tmp_path, name, obj):
    torch.save(obj, tmp_path / name)
    return tmp_path / name


def test_load_missing(tmp_path):
    with pytest.raises(CheckpointError, match='nope.pt: no such checkpoint file'): load_checkpoint(tmp_path / 'nope.pt')


def test_load_truncated(good, tmp_path):
    (tmp_path / 'cut.pt').write_bytes(good[0].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match='cut.pt: cannot be read'): load_checkpoint(tmp_path / 'cut.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='junk.pt: cannot be read'): load_checkpoint(tmp_path / 'junk.pt')


def test_load_refuses_pickled_code(tmp_path):
    (tmp_path / 'evil.pt').write_bytes(pickle.dumps(os.getcwd, protocol=2))   # a plain pickle naming a callable
    with pytest.raises(CheckpointError, match='evil.pt: cannot be read'): load_checkpoint(tmp_path / 'evil.pt')
    p = _put(tmp_path, 'np.pt', {'format': 'jvcr', 'a': np.zeros(2)})
    with pytest.raises(CheckpointError, match='np.pt: cannot be read'): load_checkpoint(p)


def test_load_not_jvcr(tmp_path):
    with pytest.raises(CheckpointError, match='other.pt: not a jvcr checkpoint'):
        load_checkpoint(_put(tmp_path, 'other.pt', {'w': torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="authors' reference checkpoint"):
        load_checkpoint(_put(tmp_path, 'authors.pt', {'arch': 'p2v2c', 'state_dict_p2v': {}, 'state_dict_v2c': {}}))
    with pytest.raises(CheckpointError, match='list.pt: not a jvcr checkpoint'):
        load_checkpoint(_put(tmp_path, 'list.pt', [1, 2]))


def test_load_bad_version_and_config(good, tmp_path):
    _, ck = good
    with pytest.raises(CheckpointError, match='v2.pt: format_version 2'):
        load_checkpoint(_put(tmp_path, 'v2.pt', {**ck, 'format_version': 2}))
    with pytest.raises(CheckpointError, match=r"cfg.pt: invalid config: JVCRConfig.in_res=100"):
        load_checkpoint(_put(tmp_path, 'cfg.pt', {**ck, 'config': {**ck['config'], 'in_res': 100}}))
    with pytest.raises(CheckpointError, match=r"cfg2.pt: invalid config: .*unexpected keyword argument 'width'"):
        load_checkpoint(_put(tmp_path, 'cfg2.pt', {**ck, 'config': {**ck['config'], 'width': 3}}))


def test_load_other_architecture(good, tmp_path):
    _, ck = good
    sd = ck['state_dict']
    p = _put(tmp_path, 'shape.pt', {**ck, 'config': {**ck['config'], 'n_points': 68}})
    with pytest.raises(CheckpointError, match=r'shape.pt: weights do not fit .* 2 shape mismatches \(e.g. regressor.fc.weight: file \(213, 32\) vs model \(204, 32\)'):
        load_checkpoint(p)
    p = _put(tmp_path, 'keys.pt', {**ck, 'state_dict': {**{k: v for k, v in sd.items() if 'score_' not in k}, 'extra.w': torch.zeros(1)}})
    with pytest.raises(CheckpointError, match=r'keys.pt: weights do not fit .*2 missing keys \(e.g. hourglass.score_.0.weight.*1 unexpected keys \(e.g. extra.w\)'):
        load_checkpoint(p)
    p = _put(tmp_path, 'deep.pt', {**ck, 'config': {**ck['config'], 'depth_res': (1, 2, 16)}})
    with pytest.raises(CheckpointError, match='deep.pt: weights do not fit the stored config'): load_checkpoint(p)


# ---- reference parity and benchmark -------------------------------------------------------------
def test_reference_parity_small():
    torch.manual_seed(0)
    ours = randomize_bn_stats(JVCR(get_config('paper', depth_res=(2, 64)))).eval()
    ref = load_into_reference(build_reference((2, 64)), ours).eval()
    fct.test_eq(count_params(ref), count_params(ours))
    x = torch.rand(1, 3, 256, 256)
    with torch.inference_mode(): (v1, c1), (v2, c2) = ours(x), ref(x)
    for a, b in zip(v1, v2): fct.test_close(a, b, eps=1e-5)
    fct.test_close(c1, c2, eps=1e-5)
    back = load_from_reference(JVCR(get_config('paper', depth_res=(2, 64))), ref)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), ours.state_dict().values()))
    with pytest.raises(ValueError, match='differ'): load_into_reference(build_reference((1, 64)), ours)
    with pytest.raises(ValueError, match='ending in 64'): build_reference((1, 32))


def test_reference_param_count_paper():
    with torch.device('meta'): ref, ours = build_reference(), JVCR('paper')
    fct.test_eq((count_params(ref.pix2vox), count_params(ref.vox2coord)), (count_params(ours.hourglass), count_params(ours.regressor)))


def test_bench_model_tiny():
    before = torch.get_num_threads()
    r = bench_model('tiny', threads=1, runs=2, warmup=1)
    fct.test_eq(torch.get_num_threads(), before)
    fct.test_eq({k: r[k] for k in ('preset', 'threads', 'batch', 'dtype', 'params_total')},
                {'preset': 'tiny', 'threads': 1, 'batch': 1, 'dtype': 'float32', 'params_total': count_params(JVCR('tiny'))})
    assert r['ms_per_crop'] > 0 and r['gmacs'] > 0 and 'ref_ms_per_crop' not in r
    fct.test_eq(bench_model('tiny', runs=1, warmup=0, dtype='bfloat16')['dtype'], 'bfloat16')
    with pytest.raises(ValueError, match='dtype must be'): bench_model('tiny', dtype='half')
