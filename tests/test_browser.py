"""Saved predictions (`evaluate(predictions_out=)`, `jvcr evaluate --predictions`) and the evaluation browser (`jvcr.browser`),
including its exported page opened in headless Chromium with the network off."""
import dataclasses, json, shutil
import numpy as np
import pytest
from jvcr import browser as B
from jvcr.cli import main
from jvcr.datasets import FaceSample
from jvcr.evaluation import (GroundTruthPredictor, MeanFacePredictor, ModelPredictor, evaluate, load_predictions,
                             run_evaluation, save_predictions)
from jvcr.geometry import CropTransform
from jvcr.inference import resolve_checkpoint
from jvcr.landmarks import canonical_face_3d
from jvcr.model import load_checkpoint
from jvcr.synthetic import toy_source
from jvcr.evaluation import schematic_faces as _schematic


def schematic_faces(n=4, seed=0): return _schematic(n, seed, 's')   # no data, no images


def test_evaluate_saves_predictions_in_face_order(tmp_path):
    faces = schematic_faces(5)
    mf = MeanFacePredictor(mean=canonical_face_3d() * [1, -1, 1] * [1, 1, 0.5])  # flattened: a nonzero error
    r = evaluate(mf, faces, batch_size=2, progress=False, per_face_csv=tmp_path / 'f.csv', predictions_out=tmp_path / 'p.npz',
                 run_info=dict(dataset='schematic'), crop='reference')
    d = load_predictions(tmp_path / 'p.npz')
    assert list(d['ids']) == [f.id for f in faces] and d['info']['n'] == 5
    assert np.allclose(d['pred'], mf(faces)) and np.array_equal(d['gt'], np.stack([f.pts for f in faces]))
    assert np.array_equal(d['crops'], np.stack([f.crop.to_array() for f in faces]))
    assert np.array_equal(d['yaw'], [f.yaw for f in faces]) and list(d['image_paths']) == [f's{i}.jpg' for i in range(5)]
    assert d['info'] == dict(format='jvcr-predictions-1', n=5, predictor='mean-face', crop='reference', dataset='schematic')
    assert r['metrics']['nme3d-box']['mean'] > 0.001


def test_load_predictions_names_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.npz'): load_predictions(tmp_path / 'nothing.npz')
    (tmp_path / 'text.npz').write_text('hello')
    with pytest.raises(ValueError, match='text.npz is not a predictions file'): load_predictions(tmp_path / 'text.npz')
    np.savez(tmp_path / 'foreign.npz', a=np.zeros(2))
    with pytest.raises(ValueError, match=r'foreign.npz is not a jvcr predictions file: it lacks ids'): load_predictions(tmp_path / 'foreign.npz')
    faces = schematic_faces(3)
    save_predictions(tmp_path / 'ok.npz', faces, np.stack([f.pts for f in faces]))
    with np.load(tmp_path / 'ok.npz') as z: d = {k: z[k] for k in z.files}
    np.savez(tmp_path / 'cut.npz', **{**d, 'pred': d['pred'][:2]})
    with pytest.raises(ValueError, match=r'cut.npz is inconsistent for its 3 faces: pred \(2, 68, 3\)'): load_predictions(tmp_path / 'cut.npz')


def test_predictions_path_is_checked_before_any_work(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='predictions file .*file is a file'):   # before the data is loaded: no data needed
        run_evaluation(baseline='mean-face', predictions_out=tmp_path / 'file' / 'p.npz', root=tmp_path / 'no-data')
    with pytest.raises(ValueError, match='predictions file'):
        evaluate(GroundTruthPredictor(), schematic_faces(2), progress=False, predictions_out=tmp_path / 'file' / 'p.npz')


def test_cli_has_predictions_flag(capsys):
    with pytest.raises(SystemExit): main(['evaluate', '--help'])
    assert '--predictions OUT.npz' in capsys.readouterr().out


@pytest.mark.parametrize('levers', [['--no-flip', '--prior', 'none', '--scales', '1'], ['--flip', '--prior', 'none', '--scales', '1'], ['--flip', '--prior', 'mean']])
def test_cli_evaluate_writes_predictions_the_browser_reads(tmp_path, monkeypatch, capsys, levers):
    "`jvcr evaluate --checkpoint default --per-face --predictions` end to end, AFLW2000-3D replaced by 4 toy faces (no data needed), with and without test-time levers."
    import jvcr.datasets
    toys = toy_source(4, res=160, seed=5)
    monkeypatch.setattr(jvcr.datasets, 'load_aflw2000_3d', lambda *a, **k: toys)
    argv = ['evaluate', '--checkpoint', 'default', '--root', str(tmp_path), '--no-progress', '--crop', '3ddfa',
            '--per-face', str(tmp_path / 'f.csv'), '--predictions', str(tmp_path / 'p.npz'), *levers]
    assert main(argv) == 0
    assert f"wrote {tmp_path / 'p.npz'}" in capsys.readouterr().out
    br = B.EvalBrowser(tmp_path / 'f.csv', tmp_path / 'p.npz', faces=toys)
    assert br.info['crop'] == '3ddfa' and br.info['checkpoint'].endswith('default.pt') and br.info['data_root'] == str(tmp_path.resolve())
    pts, _ = br.volumes(br.select()[0])                                   # the checkpoint recorded in the file reproduces it
    assert np.abs(pts - br.run['pred'][br.select()[0]]).max() < 1e-3
    from jvcr.shipped import shipped_levers
    scales = {} if '--scales' in levers or 'scales' not in shipped_levers('default') else {'scales': shipped_levers('default')['scales']}   # the card's, unless told
    assert br.info['predictor_settings'] == {'flip': '--flip' in levers, 'prior': 'mean' if 'mean' in levers else None, **scales}


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    "An evaluation run of the shipped default weights on 6 procedural toy faces: (folder, faces, checkpoint)."
    tmp = tmp_path_factory.mktemp('toyrun')
    faces = toy_source(6, res=160, seed=3)
    ckpt = resolve_checkpoint('default')
    evaluate(ModelPredictor(load_checkpoint(ckpt)[0], name='default'), faces, progress=False, per_face_csv=tmp / 'f.csv',
             predictions_out=tmp / 'p.npz', run_info=dict(dataset='toy', checkpoint=str(ckpt)))
    return tmp, faces, ckpt


def test_browser_sorts_filters_and_recomputes_volumes(toy_run):
    tmp, faces, _ = toy_run
    br = B.EvalBrowser(tmp / 'f.csv', tmp / 'p.npz', faces=faces)
    e = br.run['errors']['gte']
    idx = br.select('gte')
    assert sorted(idx) == list(range(6)) and (np.diff(e[idx]) <= 0).all()
    for b in ('[0,30]', '(30,60]', '(60,90]'):
        sel = br.select(yaw_bin=b)
        assert all(br.run['yaw_bin'][sel] == b) and len(sel) == (br.run['yaw_bin'] == b).sum()
    pts, vols = br.volumes(idx[0])
    assert np.abs(pts - br.run['pred'][idx[0]]).max() < 1e-3 and [v.shape for v in vols][-1] == (32, 32, 32)
    fig = br.face_figure(faces[2].id)
    assert np.array_equal(fig.data[2].x, br.run['pred'][2][:, 0]) and fig.data[0].marker.color == B.PRED_COLOR


def test_browser_refuses_files_that_do_not_belong_together(toy_run, tmp_path):
    tmp, faces, _ = toy_run
    d = load_predictions(tmp / 'p.npz')
    save_predictions(tmp_path / 'fewer.npz', faces[:4], d['pred'][:4])
    with pytest.raises(ValueError, match=r'f.csv and predictions .*fewer.npz are not of the same faces'):
        B.EvalBrowser(tmp / 'f.csv', tmp_path / 'fewer.npz')
    save_predictions(tmp_path / 'moved.npz', faces, d['pred'] + [2., 0, 0])
    with pytest.raises(ValueError, match=r'moved.npz do not match: nme2d-box of face'):
        B.EvalBrowser(tmp / 'f.csv', tmp_path / 'moved.npz')
    with pytest.raises(ValueError, match=r'not.csv is not a per-face CSV'):
        (tmp_path / 'not.csv').write_text('x,y\n1,2\n'); B.EvalBrowser(tmp_path / 'not.csv', tmp / 'p.npz')
    swapped = [dataclasses.replace(f, image=faces[-1 - j].image) for j, f in enumerate(faces)]
    with pytest.raises(ValueError, match='not the checkpoint'):
        B.EvalBrowser(tmp / 'f.csv', tmp / 'p.npz', faces=swapped).volumes(0)
    with pytest.raises(FileNotFoundError, match="image of face 'toy00000' not found"):
        B.EvalBrowser(tmp / 'f.csv', tmp / 'p.npz').volumes(0)


def _chromium():
    exe = B.find_chromium()
    if exe is None: pytest.skip("needs headless Chromium: apt-get install chromium (or set JVCR_CHROMIUM)")
    return exe


def test_exported_face_draws_offline_in_chromium(toy_run, tmp_path):
    "The exported page, opened with the network off, shows a drawn plot; without its plotly.js (or from the CDN) it does not."
    _chromium()
    tmp, faces, _ = toy_run
    br = B.EvalBrowser(tmp / 'f.csv', tmp / 'p.npz', faces=faces)
    page = br.export_html(br.select()[0], tmp_path / 'ok' / 'face.html')
    assert (page.parent / 'plotly.min.js').is_file() and 'src="plotly.min.js"' in page.read_text()
    good = B.plot_pixels(B.screenshot_html(page, tmp_path / 'ok.png'))
    assert B.looks_drawn(good), good
    # the same page without plotly.js beside it: nothing is drawn, and the check says so
    bare = tmp_path / 'bare' / 'face.html'; bare.parent.mkdir(); shutil.copy(page, bare)
    blank = B.plot_pixels(B.screenshot_html(bare, tmp_path / 'bare.png'))
    assert not B.looks_drawn(blank) and blank['pred'] == 0 and blank['gt'] == 0, blank
    # plotly.js from the CDN cannot load with the network off: proves the screenshot ran offline
    cdn = tmp_path / 'cdn.html'; br.face_figure(0).write_html(str(cdn), include_plotlyjs='cdn')
    offline = B.plot_pixels(B.screenshot_html(cdn, tmp_path / 'cdn.png'))
    assert not B.looks_drawn(offline), offline


def test_screenshot_names_a_missing_page(tmp_path):
    exe = _chromium()
    with pytest.raises(FileNotFoundError, match='nowhere.html'): B.screenshot_html(tmp_path / 'nowhere.html', tmp_path / 'x.png', chromium=exe)


def test_browser_on_a_real_run(real_data, tmp_path):
    "The default weights on 8 AFLW2000-3D faces: images found through the data root, volumes reproduce the saved points."
    from jvcr.datasets import load_aflw2000_3d
    faces = load_aflw2000_3d(real_data / 'aflw2000_3d', crop='3ddfa',
                             roi_boxes=real_data / 'aflw2000_3d_benchmark' / 'AFLW2000-3D_crop.roi_box.npy')[:8]
    ckpt = resolve_checkpoint('default')
    evaluate(ModelPredictor(load_checkpoint(ckpt)[0]), faces, progress=False, per_face_csv=tmp_path / 'f.csv',
             predictions_out=tmp_path / 'p.npz', run_info=dict(dataset='aflw2000-3d', checkpoint=str(ckpt), data_root=str(real_data)))
    br = B.EvalBrowser(tmp_path / 'f.csv', tmp_path / 'p.npz')
    worst = br.select('nme2d-box')[0]
    assert br.image(worst).ndim == 3
    pts, _ = br.volumes(worst)
    assert np.abs(pts - br.run['pred'][worst]).max() < 1e-3
    e = br.run['errors']['nme2d-box']
    assert e[worst] == np.nanmax(e) and 0 < np.nanmedian(e) < 0.2
