"""GPU readiness check of jvcr: run on a CUDA machine, writes one JSON of what it measured.

    PYTHONPATH=. python nbs/reproduce/cuda_check.py OUT.json

What `jvcr reproduce --device cuda` relies on, checked on a real GPU: the paper preset (and Table I's variants of it)
trains on CUDA with bf16 autocast and channels-last input through `jvcr.steps.train_step`; a full `run_training`
(data loader processes, validation, checkpoints) runs on CUDA; the predictor gives the same points on CUDA as on the
CPU. Timings are reported, never asserted (medians of timed steps after warm-up, one process, synchronised)."""
import json, os, sys, tempfile, time, statistics
from pathlib import Path
import numpy as np
import torch
from jvcr.config import get_config, Stage, TrainConfig
from jvcr.model import JVCR, count_params
from jvcr.steps import train_step, make_optimizers
from jvcr.training import run_training
from jvcr.devices import autocast_for
from jvcr.testing import random_batch

DEV = os.environ.get('JVCR_CHECK_DEVICE', 'cuda')   # 'cpu': a dry run of this script on tiny presets


def sync():
    if DEV == 'cuda': torch.cuda.synchronize()


def time_steps(preset, batch=20, steps=10, warmup=3, amp=True, mode='joint'):
    "Median seconds per training step of `preset` on CUDA (random batch), and peak memory."
    dev = torch.device(DEV)
    torch.manual_seed(0)
    model = JVCR(get_config(preset)).to(dev).train()
    opts = make_optimizers(model, TrainConfig(optimizer='rmsprop', batch_size=batch, model='tiny'))
    b = {k: ([t.to(dev) for t in v] if isinstance(v, list) else v.to(dev)) for k, v in random_batch(get_config(preset), batch).items()
         if k in ('image', 'volumes', 'coords')}
    if amp: b['image'] = b['image'].contiguous(memory_format=torch.channels_last)
    ac = autocast_for(dev, amp)
    if DEV == 'cuda': torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for i in range(warmup + steps):
        sync(); t0 = time.perf_counter()
        l = train_step((model.hourglass, model.regressor), opts, b, Stage(mode, 1, mode), autocast=ac)
        sync()
        if i >= warmup: times.append(time.perf_counter() - t0)
        losses.append(l['loss'])
    t = statistics.median(times)
    return dict(preset=preset, params=count_params(model), batch=batch, amp_bf16=amp, mode=mode, s_per_step=round(t, 4),
                samples_per_s=round(batch / t, 1), peak_gib=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if DEV == 'cuda' else None,
                finite=bool(np.isfinite(losses).all()), first_loss=losses[0], last_loss=losses[-1])


def predictor_parity(n=8):
    "Max difference of the shipped model's points on CUDA and on the CPU, toy faces, fp32 and the default path."
    from jvcr.inference import Predictor
    from jvcr.synthetic import toy_source
    faces = toy_source(n, 192, seed=3)
    imgs = [np.asarray(s.image if s.image is not None else s.load_image()) for s in faces]
    boxes = [tuple(float(v) for v in (*s.pts[:, :2].min(0), *s.pts[:, :2].max(0))) for s in faces]
    cpu = np.asarray(Predictor.from_checkpoint('default', device='cpu').predict_points(imgs, boxes))
    gpu = np.asarray(Predictor.from_checkpoint('default', device=DEV).predict_points(imgs, boxes))
    return dict(faces=n, max_abs_px=float(np.abs(cpu - gpu).max()), mean_abs_px=float(np.abs(cpu - gpu).mean()),
                tf32_conv=torch.backends.cudnn.allow_tf32)


def main(out):
    assert DEV == 'cpu' or torch.cuda.is_available(), 'no CUDA here'
    torch.backends.cudnn.benchmark = True
    res = dict(device=torch.cuda.get_device_name(0) if DEV == 'cuda' else 'cpu (dry run)', torch=torch.__version__, cuda=torch.version.cuda)
    big = DEV == 'cuda'
    res['steps'] = [time_steps(p if big else p.replace('paper', 'tiny').replace('cpu_small', 'tiny'), amp=a, mode=m,
                               batch=20 if big else 2, steps=10 if big else 1, warmup=3 if big else 1) for p, a, m in (
        ('paper', True, 'joint'), ('paper', False, 'joint'), ('paper', True, 'pretrain'),
        ('paper_flat', True, 'joint'), ('paper_two_stage', True, 'joint'), ('cpu_small', True, 'joint'))]
    for r in res['steps']: print(json.dumps(r), flush=True)
    with tempfile.TemporaryDirectory() as d:       # the whole loop: loader processes, validation, checkpoints, on CUDA
        t0 = time.time()
        preset, data = ('paper', 'toy:220') if big else ('tiny', 'toy:12')
        s = run_training(preset, data, Path(d) / 'run', epochs=(1, 1), device=DEV, num_workers=8 if big else 0,
                         progress=False, verbose=True)
        res['run_training'] = dict(preset=preset, data=data, epochs=[1, 1], wall_s=round(time.time() - t0, 1),
                                   seconds=s['seconds'], global_step=s['global_step'], best_val_nme3d=s['best_val_nme3d'],
                                   files=sorted(p.name for p in (Path(d) / 'run').iterdir()))
    print(json.dumps(res['run_training']), flush=True)
    res['predictor_parity'] = predictor_parity()
    print(json.dumps(res['predictor_parity']), flush=True)
    Path(out).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__': main(sys.argv[1] if len(sys.argv) > 1 else 'cuda_check.json')
