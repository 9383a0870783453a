"""jvcr.inference: image forms, bad input naming the image, the CLI's JSON/CSV output and failures, parity with the
evaluation's ModelPredictor on AFLW2000-3D, and TorchScript/ONNX export parity."""
import csv, json
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
import fastcore.test as fct
import jvcr.inference as ji
import jvcr.backends as jb
import jvcr.shipped as js
from jvcr.cli import main
from jvcr.model import JVCR, save_checkpoint, CheckpointError
from jvcr.synthetic import procedural_face

# Export parity bounds, max |exported - eager| over the 71 points in input-crop pixels, fp32, untrained `tiny` model
# (64-px crops, 3 random crops). Measured on 2 CPU cores, torch 2.13.0: TorchScript 0 exactly, ONNX Runtime 1.32
# about 1e-5. The bounds leave room for other CPUs' kernels.
TS_BOUND, ONNX_BOUND = 1e-4, 1e-3


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny.pt', JVCR('tiny'))


@pytest.fixture(scope='module')
def pred(ckpt): return ji.Predictor.from_checkpoint(ckpt)


@pytest.fixture(scope='module')
def face(): return procedural_face(5, res=96, yaw_range=(-30, 30), degradation=False)


def _box(face): return ji.landmark_box(face.pts)


def test_image_files_of_every_kind(tmp_path, pred, face):
    "PNG, JPEG, grayscale, RGBA and 16-bit files predict; each equals the prediction on its decoded pixels."
    rgb, box = face.image, _box(face)
    gray = np.asarray(Image.fromarray(rgb).convert('L'))
    files = {'rgb.png': Image.fromarray(rgb), 'rgb.jpg': Image.fromarray(rgb), 'gray.png': Image.fromarray(gray),
             'rgba.png': Image.fromarray(np.dstack([rgb, np.full(gray.shape, 128, np.uint8)])),
             'g16.png': Image.fromarray(gray.astype(np.uint16) * 257)}
    for name, im in files.items(): im.save(tmp_path / name)
    pts = pred.predict_points([tmp_path / n for n in files], [box] * len(files), batch_size=1)
    assert pts.shape == (5, 68, 3) and np.isfinite(pts).all()
    fct.test_close(pts[..., 2].mean(-1), 0, eps=1e-9)
    same = pred.predict_points([rgb, rgb, gray, rgb, gray], [box] * 5, batch_size=1)
    for i in (0, 2, 3, 4): fct.test_eq(pts[i], same[i])     # lossless files: the very pixels
    assert np.abs(pts[1] - same[1]).max() < 5                 # JPEG: close, not equal


def test_array_forms_agree(pred, face):
    "uint8, float in [0, 1], uint16, RGBA arrays and PIL images give the same points."
    rgb, box = face.image, _box(face)
    forms = [rgb, rgb / 255., (rgb / 255.).astype(np.float32), rgb.astype(np.uint16) * 257,
             np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)]), Image.fromarray(rgb)]
    pts = pred.predict_points(forms, [box] * len(forms), batch_size=1)
    for p in pts[1:]: fct.test_eq(p, pts[0])


def test_volumes_and_batches(pred, face):
    "return_volumes gives one (N, d_i, R, R) per stack; a 4-d array is a batch; batch size changes only float rounding."
    rgb, box = face.image, _box(face)
    pts, vols = pred.predict_points(np.stack([rgb] * 3), [box] * 3, return_volumes=True, batch_size=2)
    fct.test_eq([v.shape for v in vols], [(3, 2, 16, 16), (3, 16, 16, 16)])
    fct.test_close(pred.predict_points([rgb] * 3, [box] * 3, batch_size=3), pts, eps=1e-4)
    recs = pred.predict(np.stack([rgb] * 3), [box] * 3, batch_size=2)
    fct.test_close(np.stack([r['faces'][0]['points'] for r in recs]), pts, eps=1e-4)
    fct.test_eq([r['image'] for r in recs], [0, 1, 2])


@pytest.mark.parametrize('name,content,expect', [
    ('empty.jpg', b'', 'cannot read image'),
    ('text.png', b'hello, not an image', 'cannot read image'),
    ('truncated.png', None, 'cannot read image'),
])
def test_bad_files_name_the_file(tmp_path, pred, face, name, content, expect):
    "Unreadable, empty, truncated or non-image files: the error names the file."
    f = tmp_path / name
    if content is None:
        Image.fromarray(face.image).save(f)
        f.write_bytes(f.read_bytes()[:200])
    else: f.write_bytes(content)
    fct.test_fail(lambda: pred.predict(f, _box(face)), contains=f"{expect} {f}")


def test_bad_input_messages(tmp_path, pred, face):
    "Missing files, bad arrays and bad boxes: clear errors naming the image."
    rgb, box = face.image, _box(face)
    fct.test_fail(lambda: pred.predict(tmp_path / 'missing.jpg', box), contains=f"image not found: {tmp_path / 'missing.jpg'}")
    fct.test_fail(lambda: pred.predict([rgb, rgb * 255.], [box, box]), contains='image 1 (ndarray): float images must lie in [0, 1]')
    fct.test_fail(lambda: pred.predict([rgb, np.full(rgb.shape, np.nan)], [box, box]), contains='image 1 (ndarray): float image contains NaN')
    fct.test_fail(lambda: pred.predict(rgb.astype(np.int64), box), contains='image 0 (ndarray): unsupported dtype int64')
    fct.test_fail(lambda: pred.predict(rgb[..., :2], box), contains='image 0 (ndarray): expected an HxW, HxWx3 or HxWx4')
    fct.test_fail(lambda: pred.predict(rgb, (10, 10, 5, 50)), contains='zero or negative size')
    fct.test_fail(lambda: pred.predict(rgb, (10, 10, 10, 50)), contains='zero or negative size')
    fct.test_fail(lambda: pred.predict(rgb, (500, 10, 600, 50)), contains='lies outside the 96x96 image')
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    fct.test_fail(lambda: pred.predict(tmp_path / 'a.png', (-90, -90, -60, -60)), contains=f"{tmp_path / 'a.png'}: box")


def _no_mediapipe(monkeypatch):
    "Make every import of mediapipe fail, as where the detect extra is not installed."
    import builtins
    real = builtins.__import__
    def fake(name, *a, **kw):
        if name.split('.')[0] == 'mediapipe': raise ImportError(f"No module named '{name}'", name=name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, '__import__', fake)


def test_no_box_without_mediapipe(monkeypatch, pred, face):
    "Without MediaPipe, an image without a box fails before any work, naming the extra; with boxes all works."
    _no_mediapipe(monkeypatch)
    fresh = ji.Predictor(pred.model)
    fct.test_fail(lambda: fresh.predict(face.image), contains="pip install 'jvcr[detect]'")
    fct.test_fail(lambda: fresh.predict([face.image, face.image], [_box(face), None]), contains="pip install 'jvcr[detect]'")
    fct.test_fail(lambda: fresh.predict([face.image], errors='skip'), contains="pip install 'jvcr[detect]'")
    assert fresh.predict_points(face.image, _box(face)).shape == (1, 68, 3)


def test_bad_checkpoints(tmp_path):
    "A missing or foreign checkpoint is a CheckpointError naming the file."
    fct.test_fail(lambda: ji.Predictor.from_checkpoint(tmp_path / 'none.pt'), contains='no such checkpoint')
    torch.save({'state_dict': {}}, tmp_path / 'foreign.pt')
    with pytest.raises(CheckpointError, match='not a jvcr checkpoint'): ji.Predictor.from_checkpoint(tmp_path / 'foreign.pt')


def test_skip_keeps_the_good_ones(tmp_path, pred, face):
    "One bad file among good ones (errors='skip'): the others get their faces, the bad one a record with its error naming it."
    rgb, box = face.image, _box(face)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    (tmp_path / 'b.jpg').write_bytes(b'junk')
    r = pred.predict([tmp_path / 'a.png', tmp_path / 'b.jpg', tmp_path / 'a.png'], [box, box, (0, 0, 0, 0)], errors='skip', batch_size=8)
    fct.test_eq([(len(x['faces']), x['error'] is None) for x in r], [(1, True), (0, False), (0, False)])
    fct.test_eq([x['image'] for x in r], [str(tmp_path / n) for n in ('a.png', 'b.jpg', 'a.png')])
    assert str(tmp_path / 'b.jpg') in r[1]['error'] and 'zero or negative size' in r[2]['error']
    fct.test_eq((r[0]['width'], r[0]['height'], r[1]['width']), (96, 96, None))


def test_exif_turned_photo_gives_the_upright_points(tmp_path, pred, face):
    "A photo stored turned with an EXIF orientation tag gives the upright photo's points, size and overlay."
    rgb, box = face.image, _box(face)
    Image.fromarray(rgb).save(tmp_path / 'up.png')
    for tag, turn in ((6, Image.Transpose.ROTATE_90), (3, Image.Transpose.ROTATE_180), (8, Image.Transpose.ROTATE_270)):
        im = Image.fromarray(rgb).transpose(turn)
        ex = im.getexif(); ex[0x0112] = tag
        im.save(tmp_path / f'turned{tag}.png', exif=ex)        # lossless: the very pixels, turned
        r = pred.predict([tmp_path / 'up.png', tmp_path / f'turned{tag}.png'], [box, box])
        fct.test_eq((r[1]['width'], r[1]['height']), (96, 96))
        fct.test_close(r[1]['faces'][0]['points'], r[0]['faces'][0]['points'], eps=1e-4)
        fct.test_eq(np.asarray(ji.draw_faces(tmp_path / f'turned{tag}.png', r[1])), np.asarray(ji.draw_faces(tmp_path / 'up.png', r[0])))


def _argv(images, ckpt, out, *extra): return ['predict', *map(str, images), '--checkpoint', str(ckpt), '--out', str(out), '--no-progress', *extra]


def test_cli_json_and_csv(tmp_path, ckpt, pred, face, capsys):
    "JSON: schema, model, conventions, one entry per image with its faces; CSV: one row per face from the same records; --box; overlays."
    rgb, box = face.image, _box(face)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    Image.fromarray(rgb[:, ::-1]).save(tmp_path / 'b.png')
    imgs = [tmp_path / 'a.png', tmp_path / 'b.png']
    ref = pred.predict_points(imgs, [box, box])
    assert main(_argv(imgs, ckpt, tmp_path / 'p.json', '--box', *map(str, box), '--overlay', str(tmp_path / 'ov'))) == 0
    out = json.loads((tmp_path / 'p.json').read_text())
    fct.test_eq((out['schema'], out['convention'], out['model']['name']), (ji.PHOTO_SCHEMA, ji.PREDICTION_CONVENTION, str(ckpt)))
    from jvcr.core import sha256_file
    fct.test_eq(out['model']['sha256'], sha256_file(ckpt))
    fct.test_eq([(r['image'], r['width'], r['height'], r['error'], len(r['faces'])) for r in out['images']], [(str(i), 96, 96, None, 1) for i in imgs])
    f = out['images'][1]['faces'][0]
    fct.test_close(np.array(f['points']), ref[1], eps=1e-3)
    fct.test_close(f['box'], list(box), eps=1e-3)
    fct.test_eq((f['id'], f['source'], f['score'], sorted(f)), (0, 'given', None, ['box', 'id', 'pitch', 'points', 'roll', 'score', 'source', 'yaw']))
    fct.test_eq(sorted(p.name for p in (tmp_path / 'ov').iterdir()), ['a.png', 'b.png'])
    fct.test_eq(Image.open(tmp_path / 'ov' / 'a.png').size, (96, 96))
    (tmp_path / 'boxes.csv').write_text(f"image,x0,y0,x1,y1\na.png,{','.join(map(str, box))}\n{imgs[1]},{','.join(map(str, box))}\n")
    assert main(_argv(imgs, ckpt, tmp_path / 'sub' / 'p.csv', '--boxes', str(tmp_path / 'boxes.csv'))) == 0
    lines = (tmp_path / 'sub' / 'p.csv').read_text().splitlines()
    assert lines[0].startswith(f"# schema={ji.PHOTO_SCHEMA}; model={ckpt}; sha256={sha256_file(ckpt)}"), lines[0]
    rows = list(csv.reader(lines[1:]))
    fct.test_eq((len(rows), len(rows[0])), (3, 4 + len(ji.FACE_COLUMNS)))
    fct.test_eq(rows[0][:8], ['image', 'width', 'height', 'error', 'face', 'source', 'score', 'box_x0'])
    fct.test_eq((rows[1][0], rows[1][4:7]), (str(imgs[0]), ['0', 'given', '']))   # a given box has no detector score
    fct.test_close(np.array(rows[2][14:], dtype=float).reshape(68, 3), ref[1], eps=1e-3)
    js_face = out['images'][1]['faces'][0]                                         # the same record in both files
    fct.test_eq([float(v) for v in rows[2][7:14]], [*js_face['box'], js_face['yaw'], js_face['pitch'], js_face['roll']])
    assert 'wrote 2 faces of 2 of 2 images' in capsys.readouterr().out


def test_cli_folder_list_and_pattern(tmp_path, ckpt, face, capsys):
    "`jvcr predict DIR`, @list.txt and a quoted glob pattern name the same images; a folder without images is status 2."
    box = [str(v) for v in _box(face)]
    (tmp_path / 'photos').mkdir(); (tmp_path / 'empty').mkdir()
    for n in ('b.png', 'a.jpg'): Image.fromarray(face.image).save(tmp_path / 'photos' / n)
    (tmp_path / 'photos' / 'notes.txt').write_text('not an image')
    (tmp_path / 'list.txt').write_text('photos/a.jpg\n\n# a comment\nphotos/b.png\n')
    got = {}
    for k, inp in enumerate([str(tmp_path / 'photos'), f"@{tmp_path / 'list.txt'}", str(tmp_path / 'photos' / '*.*g')]):
        assert main(_argv([inp], ckpt, tmp_path / f'p{k}.json', '--box', *box)) == 0
        got[k] = [r['image'] for r in json.loads((tmp_path / f'p{k}.json').read_text())['images']]
    fct.test_eq(got[0], [str(tmp_path / 'photos' / n) for n in ('a.jpg', 'b.png')])
    fct.test_eq(got[1], got[0]); fct.test_eq(got[2], got[0])
    capsys.readouterr()
    assert main(_argv([tmp_path / 'empty'], ckpt, tmp_path / 'e.json', '--box', *box)) == 2
    assert 'holds no image files' in capsys.readouterr().err


def test_cli_one_bad_file(tmp_path, ckpt, face, capsys):
    "A bad file among good ones: the others are written, the bad one is one line on stderr and a record with its error, exit status 1."
    box = _box(face)
    for n in ('a', 'c'): Image.fromarray(face.image).save(tmp_path / f'{n}.png')
    (tmp_path / 'b.png').write_bytes(b'\x89PNG broken')
    imgs = [tmp_path / n for n in ('a.png', 'b.png', 'c.png', 'd.png')]  # d.png: a box in the CSV, no file
    (tmp_path / 'boxes.csv').write_text('image,x0,y0,x1,y1\n' + ''.join(f"{n},{','.join(map(str, box))}\n" for n in 'abcd' for n in [f'{n}.png']))
    assert main(_argv(imgs, ckpt, tmp_path / 'p.json', '--boxes', str(tmp_path / 'boxes.csv'))) == 1
    out = json.loads((tmp_path / 'p.json').read_text())['images']
    fct.test_eq([len(r['faces']) for r in out], [1, 0, 1, 0])
    assert str(imgs[1]) in out[1]['error'] and f'image not found: {imgs[3]}' in out[3]['error']
    err = capsys.readouterr().err.strip().splitlines()
    fct.test_eq(len(err), 2)
    assert str(imgs[1]) in err[0] and f'image not found: {imgs[3]}' in err[1]


def test_cli_checks_before_work(tmp_path, ckpt, face, capsys, monkeypatch):
    "Bad output paths, a missing checkpoint and (without MediaPipe) a missing box stop with status 2 and one line, nothing written."
    Image.fromarray(face.image).save(tmp_path / 'a.png')
    box = [str(v) for v in _box(face)]
    (tmp_path / 'file').write_text('x')
    cases = [(_argv([tmp_path / 'a.png'], ckpt, tmp_path / 'p.txt', '--box', *box), 'give a .json or .csv'),
             (_argv([tmp_path / 'a.png'], ckpt, tmp_path / 'file' / 'p.json', '--box', *box), 'is a file, not a folder'),
             (_argv([tmp_path / 'a.png'], ckpt, tmp_path / 'p.json', '--box', *box, '--overlay', str(tmp_path / 'file')), 'is a file, not a folder'),
             (_argv([tmp_path / 'a.png'], tmp_path / 'none.pt', tmp_path / 'p.json', '--box', *box), 'no such checkpoint'),
             (_argv([tmp_path / 'a.png'], ckpt, tmp_path / 'p.json'), "1 image(s) without a box (--box or --boxes): face detection needs MediaPipe's face detector")]
    for k, (argv, msg) in enumerate(cases):
        if k == len(cases) - 1: _no_mediapipe(monkeypatch)
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and err.count('\n') == 1, err
    assert not (tmp_path / 'p.json').exists()


def test_parity_with_model_predictor(real_data, tmp_path):
    "On AFLW2000-3D faces with the evaluation's boxes, Predictor equals ModelPredictor: x, y exactly, z after centring."
    from jvcr.datasets import read_aflw2000_mat
    from jvcr.evaluation import ModelPredictor
    from jvcr.model import load_checkpoint
    torch.manual_seed(1)
    path = save_checkpoint(tmp_path / 'small.pt', JVCR('cpu_small'))
    faces = [read_aflw2000_mat(m) for m in sorted((real_data / 'aflw2000_3d').glob('*.mat'))[::334]]  # 6 faces across the set
    mp, pr = ModelPredictor(load_checkpoint(path)[0]), ji.Predictor.from_checkpoint(path, backend='eager')
    for s in faces: fct.test_eq(ji.box_crop(ji.landmark_box(s.pts)).to_array()[:5], s.crop.to_array()[:5])
    boxes = [ji.landmark_box(s.pts) for s in faces]
    ours = pr.predict_points([s.image_path for s in faces], boxes, batch_size=3)
    theirs = np.concatenate([mp(faces[:3]), mp(faces[3:])])
    fct.test_eq(ours[..., :2], theirs[..., :2])
    theirs[..., 2] -= theirs[..., 2].mean(-1, keepdims=True)
    assert np.abs(ours - theirs).max() < 1e-6
    # the default backend (folded BatchNorm, float32) is the same function up to rounding, not to the bit
    fast = ji.Predictor.from_checkpoint(path)
    assert fast.backend == ji.DEFAULT_BACKEND != 'eager'
    d = np.abs(fast.predict_points([s.image_path for s in faces], boxes, batch_size=3) - theirs).max()
    assert d < 1e-2, d


def test_torchscript_parity(tmp_path, ckpt):
    "TorchScript (torch.jit.trace) of the tiny model equals the eager model within TS_BOUND crop pixels, any batch size."
    out = js.export_model(ckpt, 'torchscript', tmp_path / 'm.pt')
    model = ji.load_checkpoint(ckpt)[0]
    assert js.export_parity(out, model, batch=3) < TS_BOUND
    assert js.export_parity(out, model, batch=1, seed=5) < TS_BOUND
    fct.test_fail(lambda: js.export_model(ckpt, 'tflite', tmp_path / 'x'), contains='torchscript, onnx')


def test_onnx_parity(tmp_path, ckpt):
    "ONNX (dynamo exporter) run by onnxruntime matches the eager model within ONNX_BOUND crop pixels, any batch size."
    pytest.importorskip('onnxruntime', reason="ONNX parity needs the onnx extra: pip install 'jvcr[onnx]'")
    pytest.importorskip('onnxscript', reason="ONNX parity needs the onnx extra: pip install 'jvcr[onnx]'")
    out = js.export_model(ckpt, 'onnx', tmp_path / 'm.onnx')
    model = ji.load_checkpoint(ckpt)[0]
    assert js.export_parity(out, model, batch=3) < ONNX_BOUND
    assert js.export_parity(out, model, batch=1, seed=5) < ONNX_BOUND


def test_onnx_missing_extra_message(monkeypatch, tmp_path, ckpt):
    "Without onnx installed, export names the extra to install."
    import builtins
    real = builtins.__import__
    def fake(name, *a, **kw):
        if name.split('.')[0] in ('onnx', 'onnxruntime', 'onnxscript'): raise ImportError(f"No module named '{name}'", name=name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, '__import__', fake)
    fct.test_fail(lambda: js.export_model(ckpt, 'onnx', tmp_path / 'm.onnx'), contains="pip install 'jvcr[onnx]'")


def test_cli_export(tmp_path, ckpt, capsys):
    "`jvcr export` writes the file and reports the parity."
    assert main(['export', '--format', 'torchscript', '--checkpoint', str(ckpt), '--out', str(tmp_path / 'm.pt')]) == 0
    assert (tmp_path / 'm.pt').is_file() and 'max |exported - eager|' in capsys.readouterr().out
    assert main(['export', '--format', 'torchscript', '--checkpoint', str(tmp_path / 'no.pt'), '--out', str(tmp_path / 'n.pt')]) == 2
    assert 'no such checkpoint' in capsys.readouterr().err


def test_backends_agree_with_eager(tmp_path):
    "Every float32 backend gives the eager model's points to rounding; bf16 moves them a little; unknown names fail."
    from jvcr.reference_arch import randomize_bn_stats
    torch.manual_seed(2)
    model = randomize_bn_stats(JVCR('tiny')).eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.inference_mode(): ref = model(x)[1] * 255
    names = jb.available_backends()   # onnxruntime: the onnx extra
    dev = {b: float((jb.Backend(model, b)(x)[1] * 255 - ref).abs().max()) for b in names}
    assert dev['eager'] == 0
    assert dev['fold_bn'] < 1e-3 and dev.get('onnxruntime', 0) < 1e-3 and 0 < dev['bf16'] < 5, dev
    with pytest.raises(ValueError, match='unknown backend'): ji.Predictor(model, backend='tensorrt')
    assert f'backend={ji.DEFAULT_BACKEND}' in repr(ji.Predictor(model))


def test_cli_without_out_prints_json(tmp_path, ckpt, face, capsys):
    "`jvcr predict IMAGE` with no --out: the JSON records on standard output (the summary on stderr), nothing written; a video still needs --out."
    Image.fromarray(face.image).save(tmp_path / 'a.png')
    assert main(['predict', str(tmp_path / 'a.png'), '--checkpoint', str(ckpt), '--box', *[str(v) for v in _box(face)], '--no-progress']) == 0
    got = capsys.readouterr()
    recs = json.loads(got.out)
    fct.test_eq([len(r['faces']) for r in recs['images']], [1])
    assert 'to standard output' in got.err and sorted(p.name for p in tmp_path.iterdir()) == ['a.png']
    (tmp_path / 'clip.mp4').write_bytes(b'')
    assert main(['predict', str(tmp_path / 'clip.mp4'), '--checkpoint', str(ckpt)]) == 2
    assert 'give --out' in capsys.readouterr().err


def test_cli_flip_follows_the_card_and_the_flag(tmp_path, ckpt, face, capsys):
    "`--flip` averages with the mirrored crop and says so in the output's model; left out, it follows the weights' card (none here: off)."
    from jvcr.shipped import ship_weights
    Image.fromarray(face.image).save(tmp_path / 'a.png')
    box = [str(v) for v in _box(face)]
    ship_weights(ckpt, 'flipped', dict(test_time={'flip': True}), folder=tmp_path / 'w', storage='float32')
    runs = {}
    for name, ck, extra in (('plain', ckpt, []), ('flag', ckpt, ['--flip']), ('card', tmp_path / 'w' / 'flipped.pt', []),
                            ('card, --no-flip', tmp_path / 'w' / 'flipped.pt', ['--no-flip'])):
        assert main(['predict', str(tmp_path / 'a.png'), '--checkpoint', str(ck), '--box', *box, '--no-progress', *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        runs[name] = out['model']['flip'], np.array(out['images'][0]['faces'][0]['points'])
    assert [runs[k][0] for k in runs] == [False, True, True, False]
    assert np.abs(runs['flag'][1] - runs['plain'][1]).max() > 0.1                 # the untrained model is far from mirror-symmetric
    fct.test_close(runs['card'][1], runs['flag'][1], eps=1e-4)                      # the same weights, flipped either way
    fct.test_close(runs['card, --no-flip'][1], runs['plain'][1], eps=1e-4)
