"""Volume inference: slicing, windowing and the way back to the original
NIfTI geometry (tools/infer_volume.py, medssl.apis.inference)."""
import glob
import json
import os.path as osp
import runpy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from medssl.apis.inference import build_slice_pipeline, inference_volume
from medssl.apis.segment_files import segment_path
from medssl.datasets.converters import ct_io
from medssl.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs/benchmarks/mmsegmentation/btcv/'
             'fcn_r18-d8_1xb2-20it_btcv-phantom.py')
register_all_modules()


class ThresholdModel(torch.nn.Module):
    """A fake segmentor: label 1 where the (windowed) slice is > 0; records
    the slices it is given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def test_step(self, data):
        out = []
        for img, ds in zip(data['inputs'], data['data_samples']):
            assert img.shape[0] == 1
            self.seen.append(img[0].numpy().copy())
            s = SegDataSample()
            s.set_metainfo(ds.metainfo)
            s.pred_sem_seg = PixelData(data=(img > 0).long())
            out.append(s)
        return out


def threshold_pipeline():
    cfg = Config.fromfile(CONFIG)
    for t in cfg.test_pipeline:
        if t['type'] == 'HUWindow':
            # window (100, 101): value > 0 <=> HU > 100, exactly
            t['windows'] = [(100, 101)]
    return build_slice_pipeline(cfg)


def phantom_images(root):
    return sorted(glob.glob(osp.join(root, 'RawData/Training/img/*.nii.gz')))


def test_threshold_model_geometry(phantom_btcv_root, btcv_slices_root):
    pipeline = threshold_pipeline()
    checked_non_identity = 0
    for path in phantom_images(phantom_btcv_root):
        img = nib.load(path)
        model = ThresholdModel()
        labels = inference_volume(model, img, pipeline, batch_size=5,
                                  progress=False)
        hu = img.get_fdata()
        assert labels.shape == hu.shape and labels.dtype == np.uint8
        # voxel-for-voxel equal to thresholding the input, in the ORIGINAL
        # array orientation
        np.testing.assert_array_equal(labels, (hu > 100).astype(np.uint8))
        assert labels.sum() > 0
        # contrast-enhanced voxels are on organs (labels > 0) far more often
        # than voxels at large (the phantoms also have bone, oral contrast
        # and heart above 100 HU, so not nearly all of them are organs)
        lab = np.asarray(nib.load(path.replace('/img/', '/label/').replace(
            'img0', 'label0')).dataobj)
        assert (lab[labels > 0] > 0).mean() > 4 * (lab > 0).mean()
        # the model saw exactly the converted slices (same canonical frame
        # and slice orientation as the converter/dataset)
        case = osp.basename(path)[:-len('.nii.gz')]
        with open(osp.join(btcv_slices_root, 'meta', f'{case}.json')) as f:
            meta = json.load(f)
        for z in meta['slices']:
            stored = ct_io.read_slice(
                osp.join(btcv_slices_root, 'img_dir', f'{case}_{z:04d}.npy'))
            expect = np.clip(ct_io.decode_hu(stored) - 100, 0, 1)
            # the converter stores round(HU): x.5 HU values may differ by 0.5
            diff = np.abs(model.seen[z] - expect)
            assert diff.max() <= 0.5 + 1e-6
            assert (diff > 1e-6).mean() < 0.01
        if nib.aff2axcodes(img.affine) != ('R', 'A', 'S'):
            checked_non_identity += 1
    assert checked_non_identity >= 2


def test_segment_folder(phantom_btcv_root, tmp_path):
    src = osp.dirname(phantom_images(phantom_btcv_root)[0])
    written = segment_path(ThresholdModel(), src, str(tmp_path / 'out'),
                           threshold_pipeline(), batch_size=8,
                           progress=False)
    assert len(written) == len(phantom_images(phantom_btcv_root))
    for path in written:
        out = nib.load(path)
        ref = nib.load(osp.join(src, osp.basename(path)))
        np.testing.assert_allclose(out.affine, ref.affine)
        np.testing.assert_array_equal(np.asarray(out.dataobj),
                                      (ref.get_fdata() > 100))


@pytest.mark.slow
def test_infer_volume_cli(phantom_btcv_root, tmp_path, capsys):
    """CLI with a real (random-weight) config + checkpoint: geometry and
    header of the written NIfTI."""
    from medssl.apis.inference import init_segmentor
    model = init_segmentor(CONFIG, None)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), ckpt)
    src = [p for p in phantom_images(phantom_btcv_root)
           if nib.aff2axcodes(nib.load(p).affine) != ('R', 'A', 'S')][0]
    dst = tmp_path / 'pred.nii.gz'
    main = runpy.run_path(str(ROOT / 'tools/infer_volume.py'))['main']
    main([CONFIG, str(ckpt), src, str(dst), '--batch-size', '4', '--window',
          '-175', '250', '--no-progress'])
    assert 'wrote' in capsys.readouterr().out
    ref, out = nib.load(src), nib.load(str(dst))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.affine, ref.affine)
    assert nib.aff2axcodes(out.affine) == nib.aff2axcodes(ref.affine)
    np.testing.assert_allclose(out.header.get_zooms(), ref.header.get_zooms())
    assert out.get_data_dtype() == np.uint8
    data = np.asarray(out.dataobj)
    assert data.dtype == np.uint8 and data.max() < 14
    slope, inter = out.header.get_slope_inter()
    assert slope in (None, 1.0) and inter in (None, 0.0)
