"""tools/infer_volume.py refuses to overwrite its input and bad options
before loading anything (exit 2, one line, nothing written), and names
every file it could not write (exit 1, the rest written)."""
import os
import runpy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from test_infer_volume import CONFIG, ThresholdModel

ROOT = Path(__file__).resolve().parents[2]


def _main():
    return runpy.run_path(str(ROOT / 'tools/infer_volume.py'))['main']


def _ct(path, shape=(8, 8, 4)):
    raw = np.random.default_rng(0).integers(0, 1400, shape).astype(np.int16)
    img = nib.Nifti1Image(raw, np.diag([0.8, 0.8, 2.5, 1.]))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(path))
    return str(path)


@pytest.fixture
def no_model(monkeypatch):
    """Fail if the tool gets as far as building the model."""
    from medssl.apis import inference

    def boom(*a, **k):
        raise AssertionError('the model was loaded')

    monkeypatch.setattr(inference, 'init_segmentor', boom)


def _snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob('*')
            if p.is_file()}


def test_output_over_input_is_refused(tmp_path, capsys, no_model):
    src = tmp_path / 'ct'
    src.mkdir()
    a = _ct(src / 'a.nii.gz')
    os.symlink(src, tmp_path / 'alias')
    before = _snapshot(tmp_path)
    main = _main()
    for inp, out in ((str(src), str(src)), (a, a), (a, str(src)),
                     (str(src), str(tmp_path / 'alias')),
                     (a, str(tmp_path / 'alias' / 'a.nii.gz'))):
        assert main([CONFIG, 'no.pth', inp, out]) == 2
        err = capsys.readouterr().err
        assert err.startswith('OutputPathError: output ') and \
            'refusing to overwrite it' in err and len(err.splitlines()) == 1
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize('opts,message', [
    (['--batch-size', '0'], '--batch-size must be >= 1, got 0'),
    (['--window', '250', '-175'], '--window LOW HIGH needs LOW < HIGH'),
])
def test_bad_options_blame_the_option_not_the_volumes(tmp_path, capsys,
                                                      no_model, opts,
                                                      message):
    src = tmp_path / 'ct'
    src.mkdir()
    for n in 'ab':
        _ct(src / f'{n}.nii.gz')
    assert _main()([CONFIG, 'no.pth', str(src), str(tmp_path / 'o'),
                    *opts]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {message}')
    assert len(err.splitlines()) == 1 and 'a.nii.gz' not in err
    assert not (tmp_path / 'o').exists()


def test_missing_input_is_named(tmp_path, capsys, no_model):
    assert _main()([CONFIG, 'no.pth', str(tmp_path / 'none.nii.gz'),
                    str(tmp_path / 'o.nii.gz')]) == 2
    assert capsys.readouterr().err == \
        f'error: input {tmp_path / "none.nii.gz"} not found\n'


def test_unwritable_output_is_named_and_the_rest_written(
        tmp_path, capsys, monkeypatch):
    from medssl.apis import inference
    monkeypatch.setattr(inference, 'init_segmentor',
                        lambda *a, **k: ThresholdModel())
    src = tmp_path / 'ct'
    src.mkdir()
    for n in 'abc':
        _ct(src / f'{n}.nii.gz')
    out = tmp_path / 'out'
    (out / 'b.nii.gz').mkdir(parents=True)  # a folder where b should go
    assert _main()([CONFIG, 'x.pth', str(src), str(out),
                    '--no-progress']) == 1
    captured = capsys.readouterr()
    assert sorted(os.listdir(out)) == ['a.nii.gz', 'b.nii.gz', 'c.nii.gz']
    assert (out / 'b.nii.gz').is_dir()
    assert nib.load(str(out / 'c.nii.gz')).shape == (8, 8, 4)
    assert f'wrote {out / "c.nii.gz"}' in captured.out
    assert '1 file(s) failed, 2 written:' in captured.err
    assert f'VolumeError: {out / "b.nii.gz"}: cannot write: ' in captured.err
