"""Volume inference streams (memory held relative to the volume, measured
with tracemalloc), validates options before reading a volume, and reports
write errors per file (medssl.apis.inference, medssl.apis.segment_files)."""
import errno
import os
import sys
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.apis.inference import inference_volume
from medssl.apis.segment_files import VolumeError, plan_outputs, segment_path
from medssl.utils.output_guard import OutputPathError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test_tools'))
from test_infer_volume import ThresholdModel, threshold_pipeline  # noqa: E402

SHAPE = (64, 56, 96)  # (X, Y, Z) on disk; many slices: a batch is small
FLOAT_BYTES = int(np.prod(SHAPE)) * 4


class ForgetfulThreshold(ThresholdModel):
    """ThresholdModel that does not keep the slices it saw (they would be
    counted as memory held by inference)."""

    def test_step(self, data):
        out = super().test_step(data)
        self.seen.clear()
        return out


def write_ct(path, shape=SHAPE, seed=0):
    """int16 CT with rescale intercept -1024 and a non-RAS orientation
    (canonical z = original axis 1, flipped)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 1400, shape).astype(np.int16)
    aff = np.array([[0., 0., -2.5, 10.], [-0.8, 0., 0., 5.],
                    [0., -0.7, 0., 3.], [0., 0., 0., 1.]])
    img = nib.Nifti1Image(raw, aff)
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(path))
    return str(path)


def _peak_ratio(path, batch_size=4):
    img = nib.load(path)
    pipeline = threshold_pipeline()
    model = ForgetfulThreshold()
    tracemalloc.start()
    try:
        labels = inference_volume(model, img, pipeline, batch_size,
                                  progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # same result as thresholding the whole float volume
    np.testing.assert_array_equal(labels, img.get_fdata() > 100)
    assert labels.dtype == np.uint8 and labels.shape == img.shape
    return peak / FLOAT_BYTES


@pytest.mark.parametrize('suffix', ['.nii', '.nii.gz'])
def test_memory_is_the_output_plus_a_few_slices(tmp_path, suffix):
    batch = 4
    ratio = _peak_ratio(write_ct(tmp_path / f'ct{suffix}'), batch)
    # what may be held, in units of the float32 volume: the uint8 output
    # (1/4); for .nii.gz the decompressed int16 voxels (1/2, twice while
    # nibabel reads them; a .nii is memory-mapped); per slice of the batch
    # a few float32 copies (pipeline, tensors; 6 allowed). The old code held
    # the float volume, its canonical copy, a list of slices, ... (~6x).
    raw = 2 * 0.5 if suffix == '.nii.gz' else 0.0
    bound = 0.25 + raw + 6 * batch / SHAPE[0]
    assert ratio < bound, f'peak {ratio:.2f}x the float32 volume'
    assert ratio < 1.7


@pytest.mark.parametrize('bad', [0, -3, 2.5, True])
def test_bad_batch_size_is_refused_before_any_volume(tmp_path, bad,
                                                     monkeypatch):
    src = write_ct(tmp_path / 'ct.nii.gz', shape=(8, 8, 4))
    loads = []
    monkeypatch.setattr(nib, 'load',
                        lambda *a, **k: loads.append(a) or None)
    with pytest.raises(ValueError, match='batch size must be an integer '
                       f'>= 1, got {bad!r}'):
        segment_path(ForgetfulThreshold(), src, str(tmp_path / 'o.nii.gz'),
                     threshold_pipeline(), batch_size=bad, progress=False)
    assert loads == [] and not (tmp_path / 'o.nii.gz').exists()


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    a = write_ct(src / 'a.nii.gz', shape=(8, 8, 4))
    before = Path(a).read_bytes()
    os.symlink(src, tmp_path / 'link')
    os.link(a, tmp_path / 'hard.nii.gz')
    for dst in (str(src), str(tmp_path / 'link'), str(src) + '/',
                str(tmp_path / 'in' / '..' / 'in')):
        with pytest.raises(OutputPathError, match=f'is the input folder {src}:'):
            plan_outputs(str(src), dst)
    for dst in (a, str(src), str(tmp_path / 'link' / 'a.nii.gz'),
                str(tmp_path / 'hard.nii.gz')):
        with pytest.raises(OutputPathError, match='refusing to overwrite'):
            segment_path(ForgetfulThreshold(), a, dst, threshold_pipeline(),
                         progress=False)
    assert Path(a).read_bytes() == before
    assert sorted(os.listdir(src)) == ['a.nii.gz']
    # a different file in the same folder is fine
    assert plan_outputs(a, str(src / 'mask.nii.gz')) == [
        (a, str(src / 'mask.nii.gz'))]


def test_write_errors_name_the_file_and_the_rest_is_written(
        tmp_path, monkeypatch):
    src = tmp_path / 'in'
    src.mkdir()
    for n in ('a', 'b', 'c'):
        write_ct(src / f'{n}.nii.gz', shape=(8, 8, 4))
    out = tmp_path / 'out'
    (out / 'b.nii.gz').mkdir(parents=True)  # cannot be replaced by a file
    real_save = nib.save

    def full_disk(img, path):
        if os.path.basename(path).startswith('.c.nii.gz'):
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        return real_save(img, path)

    monkeypatch.setattr(nib, 'save', full_disk)
    failed = []
    written = segment_path(ForgetfulThreshold(), str(src), str(out),
                           threshold_pipeline(), progress=False,
                           failed=failed)
    assert written == [str(out / 'a.nii.gz')]
    assert [f for f, _ in failed] == [str(src / 'b.nii.gz'),
                                      str(src / 'c.nii.gz')]
    assert failed[0][1].startswith(f'{out / "b.nii.gz"}: cannot write: ')
    assert failed[1][1].startswith(
        f'{out / "c.nii.gz"}: cannot write: OSError: [Errno 28] No space')
    # no temporaries left behind
    assert sorted(os.listdir(out)) == ['a.nii.gz', 'b.nii.gz']
    assert os.listdir(out / 'b.nii.gz') == []
    # without ``failed`` the summary error names both
    with pytest.raises(VolumeError, match=r'2/3 files failed: .*b\.nii\.gz'
                       r'.*c\.nii\.gz'):
        segment_path(ForgetfulThreshold(), str(src), str(out),
                     threshold_pipeline(), progress=False)


def test_non_hu_input_is_warned_about_by_name(tmp_path, capsys):
    grey = tmp_path / 'grey.nii.gz'
    nib.save(nib.Nifti1Image(np.full((8, 8, 4), 200, np.uint8),
                             np.eye(4)), str(grey))
    ct = write_ct(tmp_path / 'ct.nii.gz', shape=(8, 8, 4))
    for src in (str(grey), ct):
        segment_path(ForgetfulThreshold(), src, str(tmp_path / 'o.nii.gz'),
                     threshold_pipeline(), progress=False)
    err = capsys.readouterr().err
    assert err == (f'warning: {grey}: uint8 voxels (values 200..200) cannot '
                   'be CT numbers in HU (air is -1000 HU): an 8-bit display '
                   'export? They are used as HU as they are\n')
