"Training tests: presets and schedules, the tiny preset end to end, determinism, kill-and-resume, 2-process DDP (gloo), bad input."
import json, os, socket, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch
from torch import nn
import fastcore.test as fct
from jvcr import training as jt
from jvcr.model import JVCR, get_config, load_checkpoint
from jvcr.synthetic import ToyFaces
from jvcr.bench import bench_training

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def toy():
    "A toy pool: 24 training faces, 8 held-out faces (tiny preset)."
    return ToyFaces(24, 'tiny', seed=0), ToyFaces(8, 'tiny', seed=0, first=24, train=False)


def _quiet(**kw): return dict(progress=False, verbose=False, **kw)


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    env.pop('RANK', None); env.pop('WORLD_SIZE', None)
    return env


def _python(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, *map(str, args)], env=_env(), capture_output=True, text=True, timeout=timeout, **kw)


def _state(path): return torch.load(path, weights_only=True)


def _assert_same_weights(a, b, atol=0.):
    fct.test_eq(sorted(a), sorted(b))
    for k in a:
        if atol == 0: assert torch.equal(a[k], b[k]), k
        else: assert torch.allclose(a[k].double(), b[k].double(), atol=atol, rtol=0), (k, (a[k].double() - b[k].double()).abs().max().item())


# ---- configuration -----------------------------------------------------------------------------
def test_presets_and_schedules():
    p, r = jt.get_train_config('paper'), jt.get_train_config('reference_code')
    fct.test_eq((p.optimizer, p.lr, [s.epochs for s in p.stages], [s.mode for s in p.stages]), ('rmsprop', 2.5e-4, [15, 10], ['pretrain', 'joint']))
    fct.test_eq([p.lr_at(e) for e in (0, 9, 10, 19, 20, 24)], [2.5e-4, 2.5e-4, 2.5e-5, 2.5e-5, 2.5e-6, 2.5e-6])
    fct.test_eq((r.optimizer, r.batch_size, [s.epochs for s in r.stages]), ('adam', 20, [15, 15]))
    fct.test_eq([r.lr_at(e) for e in (0, 9, 10, 19, 20, 29)], [1e-3, 1e-3, 2.5e-5, 2.5e-5, 2.5e-6, 2.5e-6])
    fct.test_eq(sorted(jt.TRAIN_PRESETS), ['cpu_finetune', 'cpu_long', 'cpu_longer', 'cpu_small', 'paper', 'reference_code', 'tiny'])
    for name, c in jt.TRAIN_PRESETS.items(): fct.test_eq(c.model in ('paper', 'reference_code', 'cpu_small', 'tiny'), True)
    custom = jt.get_train_config('paper', optimizer='adam', lr=1e-3, milestones=(3,), lr_values=(1e-5,), epochs=(2, 2))
    fct.test_eq([custom.lr_at(e) for e in range(4)], [1e-3, 1e-3, 1e-3, 1e-5])
    fct.test_eq(jt.TrainConfig(**json.loads(json.dumps(custom.to_dict()))), custom)
    with pytest.raises(ValueError, match="unknown training preset 'x'"): jt.get_train_config('x')
    with pytest.raises(ValueError, match=r"TrainConfig.lr=-1"): jt.get_train_config('tiny', lr=-1)


def test_epoch_batches_split_over_ranks():
    full = list(jt.EpochBatches(23, 6, seed=1, epoch=2))
    fct.test_eq(len(full), 3)
    parts = [list(jt.EpochBatches(23, 6, 1, 2, rank=r, world_size=3)) for r in range(3)]
    fct.test_eq([a + b + c for a, b, c in zip(*parts)], full)
    fct.test_eq(list(jt.EpochBatches(23, 6, 1, 2, start=2)), full[2:])
    with pytest.raises(ValueError, match='does not split over 4 processes'): jt.EpochBatches(23, 6, 1, 2, world_size=4)


# ---- training ----------------------------------------------------------------------------------
def test_tiny_trains_end_to_end_with_workers(toy, tmp_path):
    tr, va = ToyFaces(48, 'tiny', seed=0), toy[1]
    res = jt.train(tr, va, tmp_path / 'run', 'tiny', epochs=(1, 2), num_workers=2, **_quiet())  # 36 steps of 4
    fct.test_eq((res['global_step'], res['epochs_done'], res['device']), (36, 3, 'cpu'))
    steps = jt.read_metrics(tmp_path / 'run', 'step')
    fct.test_eq(len(steps), 36)
    pre = [r['loss'] for r in steps if r['stage'] == 'pretrain']
    assert sum(pre[-4:]) < sum(pre[:4]), pre
    for k in ('loss_vox', 'loss_coord'):
        first, last = (sum(r[k] for r in part) / 6 for part in (steps[:6], steps[-6:]))
        assert last < first, (k, first, last)
    epochs = jt.read_metrics(tmp_path / 'run', 'epoch')
    fct.test_eq([r['stage'] for r in epochs], ['pretrain', 'joint', 'joint'])
    for r in epochs:
        for k in ('epoch', 'step', 'lr', 'loss', 'loss_coord', 'loss_vox', 'loss_vox_0', 'loss_vox_1', 'val_nme2d', 'val_nme3d',
                  'seconds', 'samples_per_s'): assert k in r, k
    fct.test_eq(sorted(p.name for p in (tmp_path / 'run').iterdir()),
                ['best.pt', 'end_pretrain.pt', 'last.pt', 'loss_curve.png', 'metrics.jsonl', 'train_config.json'])
    best, extra = load_checkpoint(tmp_path / 'run' / 'best.pt')
    fct.test_eq(extra['val_nme3d'], min(r['val_nme3d'] for r in epochs))
    last = torch.load(tmp_path / 'run' / 'last.pt', weights_only=True)   # the whole training state loads safely
    fct.test_eq((last['extra']['train_state']['epoch'], last['extra']['train_state']['global_step']), (3, 36))


def test_same_seed_same_metrics_log(toy, tmp_path):
    tr, va = toy
    class Count(jt.Callback):
        n = 0
        def on_checkpoint(self, state, path): Count.n += 1
    jt.train(tr, va, tmp_path / 'a', 'tiny', **_quiet())
    jt.train(tr, va, tmp_path / 'b', 'tiny', ckpt_minutes=1e-9, callbacks=[Count()], **_quiet())  # a timed checkpoint after every step
    fct.test_eq(Count.n, 12)                 # 12 steps: 10 timed + 2 at the epoch ends
    a, b = (jt.read_metrics(tmp_path / d, timings=False) for d in ('a', 'b'))
    fct.test_eq(len(a), 12 + 2)
    fct.test_eq(a, b)
    jt.train(tr, va, tmp_path / 'c', 'tiny', seed=1, **_quiet())
    fct.test_ne(jt.read_metrics(tmp_path / 'c', timings=False), a)


def test_stub_model_minimal_interface(toy, tmp_path):
    "The trainer needs only .hourglass, .regressor and .config."
    class Split(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, x): v = self.m(x); return [v[:, :2], v[:, 2:]]                # (B, 2, 16, 16), (B, 16, 16, 16)
    class Stub(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = get_config('tiny')
            self.hourglass = Split(nn.Conv2d(3, 18, 4, stride=4))
            self.regressor = nn.Sequential(nn.Flatten(), nn.Linear(16 ** 3, 71 * 3), nn.Unflatten(1, (71, 3)))
    torch.manual_seed(0)
    res = jt.train(toy[0], toy[1], tmp_path / 'stub', 'tiny', model=Stub(), **_quiet())
    fct.test_eq(res['global_step'], 12)
    assert (tmp_path / 'stub' / 'best.pt').exists()


# ---- kill and resume ---------------------------------------------------------------------------
RUN_SCRIPT = """
import os, signal, sys, torch
from jvcr.training import train, Callback
from jvcr.synthetic import ToyFaces
out, mode = sys.argv[1], sys.argv[2]
tr, va = ToyFaces(24, 'tiny', seed=0), ToyFaces(8, 'tiny', seed=0, first=24, train=False)
class Kill(Callback):
    def on_step_end(self, state, row):
        if state.global_step == 9: os.kill(os.getpid(), signal.SIGKILL)   # 1 step after the checkpoint of step 8
r = train(tr, va, out, 'tiny', resume=mode == 'resume', callbacks=[Kill()] if mode == 'kill' else [], ckpt_steps=4,
          progress=False, verbose=False)
torch.save(r['model'].state_dict(), os.path.join(out, 'final.pt'))
"""


def test_sigkill_and_resume_gives_the_same_weights(tmp_path):
    script = tmp_path / 'run.py'
    script.write_text(RUN_SCRIPT)
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    procs = [subprocess.Popen([sys.executable, str(script), str(d), m], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d, m in ((full, 'full'), (cut, 'kill'))]
    outs = [p.communicate(timeout=180) for p in procs]
    fct.test_eq(procs[0].returncode, 0)
    fct.test_eq(procs[1].returncode, -9)                                         # SIGKILL
    assert not (cut / 'final.pt').exists()
    ck = torch.load(cut / 'last.pt', weights_only=True)['extra']['train_state']
    fct.test_eq((ck['epoch'], ck['step_in_epoch'], ck['global_step']), (1, 2, 8))  # mid-epoch: 2 of 6 batches of epoch 1 done
    r = _python(script, cut, 'resume', timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    _assert_same_weights(_state(full / 'final.pt'), _state(cut / 'final.pt'))     # bitwise on CPU
    fct.test_eq(jt.read_metrics(cut, timings=False), jt.read_metrics(full, timings=False))
    _assert_same_weights(load_checkpoint(full / 'best.pt')[0].state_dict(), load_checkpoint(cut / 'best.pt')[0].state_dict())


# ---- DistributedDataParallel -------------------------------------------------------------------
DDP_SCRIPT = """
import os, sys, torch
from jvcr.training import train
from jvcr.synthetic import ToyFaces
out, micro = sys.argv[1], int(sys.argv[2])
tr, va = ToyFaces(16, 'tiny', seed=0), ToyFaces(4, 'tiny', seed=0, first=16, train=False)
r = train(tr, va, out, 'tiny', micro_batches=micro, progress=False, verbose=False)
assert r['world_size'] == int(os.environ.get('WORLD_SIZE', 1))
torch.save(r['model'].state_dict(), os.path.join(out, f"rank{os.environ.get('RANK', 0)}.pt"))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_ddp_two_processes_gloo_matches_single_process(tmp_path):
    "torchrun, 2 CPU processes (gloo), global batch 4 = 2 per rank, 8 steps (pre-training and joint)."
    script = tmp_path / 'ddp.py'
    script.write_text(DDP_SCRIPT)
    ddp, single = tmp_path / 'ddp', tmp_path / 'single'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), str(script), str(ddp), '1']
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r1 = _python(script, single, 2, timeout=180)     # one process, the same global batch in 2 micro-batches of 2
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err[-3000:]
    assert r1.returncode == 0, r1.stderr[-3000:]
    w0, w1, ws = (_state(d / f) for d, f in ((ddp, 'rank0.pt'), (ddp, 'rank1.pt'), (single, 'rank0.pt')))
    _assert_same_weights(w0, w1)                     # both ranks: identical parameters and BatchNorm statistics
    _assert_same_weights(w0, ws, atol=1e-5)          # = the single-process run on the same global batch
    a, b = jt.read_metrics(ddp, timings=False), jt.read_metrics(single, timings=False)
    fct.test_eq([r['step'] for r in a], [r['step'] for r in b])
    for ra, rb in zip(a, b):
        for k, v in ra.items():
            if isinstance(v, float): assert abs(v - rb[k]) <= 1e-5 * max(1, abs(v)), (k, v, rb[k])
    fct.test_eq(sorted(p.name for p in ddp.iterdir()),
                ['best.pt', 'end_pretrain.pt', 'last.pt', 'loss_curve.png', 'metrics.jsonl', 'rank0.pt', 'rank1.pt', 'train_config.json'])


# ---- bad input ---------------------------------------------------------------------------------
class _Points66(torch.utils.data.Dataset):
    def __init__(self, ds): self.ds = ds
    def __len__(self): return len(self.ds)
    def __getitem__(self, i): return dict(self.ds[i], coords=self.ds[i]['coords'][:66])


def test_bad_input_is_refused_before_writing(toy, tmp_path):
    tr, va = toy
    new = tmp_path / 'new'
    with pytest.raises(ValueError, match='the training pool is empty'): jt.train([], va, new)
    with pytest.raises(ValueError, match='the validation pool is empty'): jt.train(tr, [], new)
    with pytest.raises(ValueError, match=r'66 points per face \(coords \(66, 3\)\) but the model config has n_points=71'):
        jt.train(_Points66(tr), va, new)
    with pytest.raises(ValueError, match=r'has 24 samples, fewer than one global batch of 32'): jt.train(tr, va, new, batch_size=32)
    with pytest.raises(ValueError, match=r'needs \(3, 128, 128\) \(in_res=128\)'): jt.train(tr, va, new, model='cpu_small')
    with pytest.raises(TypeError, match='needs an nn.Module with .hourglass'): jt.train(tr, va, new, model=nn.Linear(2, 2))
    with pytest.raises(ValueError, match='micro_batches'): jt.train(tr, va, new, micro_batches=3)
    assert not new.exists()


def test_resume_refuses_another_configuration(toy, tmp_path):
    tr, va = toy
    run = tmp_path / 'run'
    jt.train(tr, va, run, 'tiny', epochs=(1, 0), **_quiet())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ValueError, match='already holds a training run'): jt.train(tr, va, run, 'tiny', **_quiet())
    with pytest.raises(ValueError, match=r'holds another configuration \(train.optimizer: stored .adam., now .rmsprop.'):
        jt.train(tr, va, run, 'tiny', resume=True, epochs=(1, 0), optimizer='rmsprop', **_quiet())
    with pytest.raises(ValueError, match=r'model.features: stored 16, now 8'):
        jt.train(tr, va, run, 'tiny', resume=True, epochs=(1, 0), model=JVCR(get_config('tiny', features=8)), **_quiet())
    fct.test_eq({p.name: p.read_bytes() for p in run.iterdir()}, before)
    # runtime fields may change; a finished run resumes to a no-op
    r = jt.train(tr, va, run, 'tiny', resume=True, epochs=(1, 0), num_workers=1, ckpt_minutes=1, **_quiet())
    fct.test_eq((r['epochs_done'], r['global_step']), (1, 6))


def test_bench_training_reports_throughput():
    r = bench_training('tiny', batch=2, steps=1, threads=1, mode='pretrain')
    assert r['samples_per_s'] > 0 and r['s_per_step'] > 0
    fct.test_eq((r['preset'], r['batch'], r['mode']), ('tiny', 2, 'pretrain'))


def test_without_validation_no_best_checkpoint(toy, tmp_path):
    r = jt.train(toy[0], None, tmp_path / 'noval', 'tiny', epochs=(1, 0), **_quiet())
    fct.test_eq((r['global_step'], r['best_val_nme3d']), (6, None))
    assert not (tmp_path / 'noval' / 'best.pt').exists() and (tmp_path / 'noval' / 'last.pt').exists()
    assert 'val_nme3d' not in jt.read_metrics(tmp_path / 'noval', 'epoch')[0]


def test_run_training_toy_and_test_set_refused(tmp_path, real_data):
    r = jt.run_training('tiny', 'toy:24', tmp_path / 'cli', epochs=(1, 0), val_fraction=0.25, progress=False, verbose=False)
    fct.test_eq(r['global_step'], 4)                                   # 18 training faces -> 4 batches of 4
    with pytest.raises(ValueError, match='AFLW2000-3D.*the test set'):
        jt.run_training('tiny', real_data / 'aflw2000_3d', tmp_path / 'x')
    assert not (tmp_path / 'x').exists()
