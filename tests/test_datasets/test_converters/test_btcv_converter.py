import filecmp
import glob
import json
import multiprocessing
import os
import os.path as osp

import cv2
import nibabel as nib
import numpy as np
import pytest

from medssl.datasets.converters import (BTCV_SPLIT_FILE, ConversionError,
                                        convert_btcv, load_split_file)
from medssl.datasets.converters.common import (CaseSpec, ConvertOptions,
                                               convert_case, is_case_done)
from medssl.datasets.converters.ct_io import (canonical_to_slice, decode_hu,
                                              read_slice, slices_to_canonical)
from medssl.datasets.phantom_writer import write_phantom_dataset
from medssl.datasets.phantoms import make_phantom_case

PHANTOM_IDS = (1, 2, 3, 39, 40)  # as in tests/conftest.py
META_KEYS = {
    'case', 'image', 'label', 'original_affine', 'original_shape',
    'original_axcodes', 'canonical_affine', 'canonical_shape', 'spacing',
    'slices', 'num_slices_total', 'img_format'
}


def _read(path):
    """A label PNG (uint8)."""
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    return arr


def _tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = osp.join(dirpath, f)
            with open(p, 'rb') as fh:
                out[osp.relpath(p, root)] = fh.read()
    return out


def test_shipped_split_file():
    splits = load_split_file(BTCV_SPLIT_FILE)
    assert [len(splits[k]) for k in ('train', 'val', 'test')] == [20, 4, 6]
    all_ids = [f'img{i:04d}' for i in list(range(1, 11)) +
               list(range(21, 41))]
    assert sorted(splits['train'] + splits['val'] + splits['test']) == \
        all_ids
    # the held-out set is the UNETR split's validation set (comparable
    # numbers); val is carved from that split's 24 training volumes
    assert splits['test'] == [f'img{i:04d}' for i in range(35, 41)]
    assert splits['val'] == ['img0003', 'img0009', 'img0025', 'img0031']


def test_roundtrip_exact_hu_and_labels(btcv_slices_root):
    out = btcv_slices_root
    for index, num in enumerate(PHANTOM_IDS):
        case = f'img{num:04d}'
        ph = make_phantom_case(0, 'btcv', (64, 64, 12), index=index)
        with open(osp.join(out, 'meta', f'{case}.json')) as f:
            meta = json.load(f)
        assert set(meta) == META_KEYS
        assert meta['case'] == case
        assert meta['img_format'] == 'npy'  # the default
        assert tuple(meta['original_axcodes']) == ph['axcodes']
        assert meta['canonical_shape'] == list(ph['hu'].shape)
        assert meta['original_shape'] == list(ph['data'].shape)
        assert np.allclose(meta['canonical_affine'], ph['canonical_affine'])
        assert np.allclose(meta['original_affine'], ph['affine'])
        assert np.allclose(meta['spacing'], ph['spacing'])
        assert meta['slices'] == list(range(ph['hu'].shape[2]))
        assert meta['num_slices_total'] == ph['hu'].shape[2]
        expected = np.clip(np.rint(ph['hu']), -1024, 64511)
        imgs, lbls = [], []
        for z in meta['slices']:
            name = f'{case}_{z:04d}'
            stored = np.load(osp.join(out, 'img_dir', name + '.npy'))
            assert stored.dtype == np.uint16 and stored.ndim == 2
            hu = decode_hu(stored)
            assert np.array_equal(hu, canonical_to_slice(expected, z))
            lbl = _read(osp.join(out, 'ann_dir', name + '.png'))
            assert lbl.dtype == np.uint8
            assert np.array_equal(lbl, canonical_to_slice(ph['label'], z))
            imgs.append(hu)
            lbls.append(lbl)
        assert np.array_equal(slices_to_canonical(imgs), expected)
        assert np.array_equal(slices_to_canonical(lbls), ph['label'])
        # padding (-2048/-3024) is clipped to -1024 (air)
        if ph['pad_hu'] is not None:
            assert min(h.min() for h in imgs) == -1024


def test_splits_and_summary(btcv_slices_root):
    out = btcv_slices_root
    rd = lambda p: open(osp.join(out, 'splits', p)).read().split()  # noqa
    assert rd('train_cases.txt') == ['img0001', 'img0002']
    assert rd('val_cases.txt') == ['img0003']
    assert rd('test_cases.txt') == ['img0039', 'img0040']
    train, val, test = rd('train.txt'), rd('val.txt'), rd('test.txt')
    cases = {}
    for k, names in (('train', train), ('val', val), ('test', test)):
        assert names == sorted(names)
        cases[k] = {n.rsplit('_', 1)[0] for n in names}
        assert cases[k] == set(rd(f'{k}_cases.txt'))
    assert not (cases['train'] & cases['val'] or cases['train'] & cases[
        'test'] or cases['val'] & cases['test'])
    files = os.listdir(osp.join(out, 'img_dir'))
    assert all(f.endswith('.npy') for f in files)
    stems = sorted(f[:-4] for f in files)
    assert stems == sorted(train + val + test)
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['num_cases'] == 5 and summary['skipped'] == []
    assert summary['img_format'] == 'npy'
    assert summary['slices'] == len(stems)
    assert summary['splits'] == dict(train=len(train), val=len(val),
                                     test=len(test))


def _marker_volume(axcodes):
    """A canonical volume with a bright marker near patient right+anterior
    and a second one near left+posterior, stored in ``axcodes`` built by hand
    (independent of nibabel's orientation helpers)."""
    X, Y, Z = 20, 16, 6
    canon = np.full((X, Y, Z), -1000, np.int16)
    canon[X - 3, Y - 3, 4] = 1500  # right (high x), anterior (high y), z=4
    canon[2, 1, 1] = 900  # left, posterior, z=1
    s = np.array([0.7, 0.8, 2.5])
    if axcodes == ('L', 'P', 'S'):
        native = canon[::-1, ::-1, :]
        aff = np.diag([-s[0], -s[1], s[2], 1.0])
    elif axcodes == ('P', 'L', 'I'):
        native = canon[::-1, ::-1, ::-1].transpose(1, 0, 2)
        aff = np.zeros((4, 4))
        aff[1, 0], aff[0, 1], aff[2, 2], aff[3, 3] = -s[1], -s[0], -s[2], 1
    elif axcodes == ('S', 'R', 'A'):
        native = canon.transpose(2, 0, 1)
        aff = np.zeros((4, 4))
        aff[2, 0], aff[0, 1], aff[1, 2], aff[3, 3] = s[2], s[0], s[1], 1
    aff[:3, 3] = [10.0, -20.0, 30.0]
    assert nib.aff2axcodes(aff) == axcodes
    return np.ascontiguousarray(native), aff


@pytest.mark.parametrize('axcodes', [('L', 'P', 'S'), ('P', 'L', 'I'),
                                     ('S', 'R', 'A')])
def test_marker_lands_top_left(tmp_path, axcodes):
    native, aff = _marker_volume(axcodes)
    path = str(tmp_path / 'img0001.nii.gz')
    img = nib.Nifti1Image(native, aff)
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, path)
    out = str(tmp_path / 'out')
    for sub in ('img_dir', 'ann_dir', 'meta'):
        os.makedirs(osp.join(out, sub))
    res = convert_case(CaseSpec('img0001', path), out, ConvertOptions())
    assert res['status'] == 'done' and res['slices'] == 6
    sl = decode_hu(read_slice(osp.join(out, 'img_dir', 'img0001_0004.npy')))
    assert sl.shape == (16, 20)  # rows = y (A->P), cols = x (R->L)
    assert np.unravel_index(np.argmax(sl), sl.shape) == (2, 2)  # top-left
    sl = decode_hu(read_slice(osp.join(out, 'img_dir', 'img0001_0001.npy')))
    # left+posterior marker: bottom-right region
    assert np.unravel_index(np.argmax(sl), sl.shape) == (16 - 2, 20 - 3)
    with open(osp.join(out, 'meta', 'img0001.json')) as f:
        assert tuple(json.load(f)['original_axcodes']) == axcodes


@pytest.mark.parametrize('kind,pattern', [
    ('truncated', r'img0035.*(corrupt|truncated)'),
    ('shape_mismatch', r'img0035: shape mismatch'),
    ('affine_mismatch', r'img0035: affine mismatch'),
    ('float_labels', r'img0035.*non-integer'),
    ('unknown_labels', r'img0035.*unknown label ids \[99\]'),
])
def test_bad_input_fails_cleanly(tmp_path, kind, pattern):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    # one case of each shipped split (train / val / test)
    write_phantom_dataset(raw, 'btcv', num_cases=3, case_ids=(1, 3, 35),
                          broken=(kind, ), shape=(32, 32, 6))
    with pytest.raises(ConversionError, match=pattern):
        convert_btcv(raw, out, progress=False)
    leftovers = [
        p for p in glob.glob(osp.join(out, '**', '*'), recursive=True) +
        glob.glob(osp.join(out, '**', '.*'), recursive=True)
        if 'img0035' in p or p.endswith('.tmp')
    ]
    assert leftovers == []
    assert not osp.exists(osp.join(out, 'summary.json'))


def test_on_error_skip_records_reason(tmp_path):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    write_phantom_dataset(raw, 'btcv', num_cases=3, case_ids=(1, 2, 35),
                          broken=('unknown_labels', ), shape=(32, 32, 6))
    split = str(tmp_path / 'split.json')
    with open(split, 'w') as f:
        json.dump(dict(train=['img0001'], val=['img0002', 'img0035']), f)
    summary = convert_btcv(raw, out, split_file=split, on_error='skip',
                           progress=False)
    assert summary['cases'] == ['img0001', 'img0002']
    assert [s['case'] for s in summary['skipped']] == ['img0035']
    assert 'unknown label ids' in summary['skipped'][0]['reason']
    with open(osp.join(out, 'splits', 'val_cases.txt')) as f:
        assert f.read() == 'img0002\n'
    assert not glob.glob(osp.join(out, '*', 'img0035*'))


def test_empty_input_and_missing_split_cases(tmp_path):
    os.makedirs(tmp_path / 'empty' / 'RawData' / 'Training' / 'img')
    with pytest.raises(ConversionError, match='no BTCV images'):
        convert_btcv(str(tmp_path / 'empty'), str(tmp_path / 'o1'))
    raw = str(tmp_path / 'raw')
    write_phantom_dataset(raw, 'btcv', num_cases=2, shape=(32, 32, 6))
    with pytest.raises(ConversionError, match=r"split 'val'.*--split-file"):
        convert_btcv(raw, str(tmp_path / 'o2'), progress=False)
    assert not osp.exists(tmp_path / 'o2')  # checked before converting
    bad = str(tmp_path / 'overlap.json')
    with open(bad, 'w') as f:
        json.dump(dict(train=['img0001'], val=['img0001']), f)
    with pytest.raises(ConversionError, match='img0001 is in both'):
        convert_btcv(raw, str(tmp_path / 'o3'), split_file=bad)


def _killed_run(raw, out, split, kill_after, fmt_kw):
    count = [0]

    def hook(case, z):
        count[0] += 1
        if count[0] == kill_after:
            # leave junk like a real kill mid-write (a temporary in the
            # private folder), then die hard
            suffix = '.' + fmt_kw.get('img_format', 'npy')
            tmp = osp.join(out, 'img_dir', '.medssl-tmp')
            os.makedirs(tmp, exist_ok=True)
            with open(osp.join(tmp, f'1-0123abcd-{case}_9999{suffix}'),
                      'wb') as f:
                f.write(b'junk')
            os._exit(3)

    convert_btcv(raw, out, split_file=split, progress=False, threads=2,
                 after_slice=hook, **fmt_kw)


# npy: the default (no argument given); png: the --img-format png option
@pytest.mark.parametrize('fmt', ['npy', 'png'])
def test_resume_after_kill_is_byte_identical(tmp_path, fmt):
    fmt_kw = {} if fmt == 'npy' else dict(img_format=fmt)
    raw = str(tmp_path / 'raw')
    write_phantom_dataset(raw, 'btcv', num_cases=3, case_ids=(1, 2, 35),
                          shape=(32, 32, 6))
    split = str(tmp_path / 'split.json')
    with open(split, 'w') as f:
        json.dump(dict(train=['img0001', 'img0002'], val=['img0035']), f)
    ref, out = str(tmp_path / 'ref'), str(tmp_path / 'out')
    convert_btcv(raw, ref, split_file=split, progress=False, **fmt_kw)
    assert {osp.splitext(f)[1] for f in os.listdir(
        osp.join(ref, 'img_dir'))} == {'.' + fmt}

    ctx = multiprocessing.get_context('fork')
    p = ctx.Process(target=_killed_run, args=(raw, out, split, 9, fmt_kw))
    p.start()
    p.join()
    assert p.exitcode == 3
    # killed inside the 2nd case: 1st committed, 2nd partial, no summary
    assert osp.isfile(osp.join(out, 'meta', 'img0001.json'))
    assert not osp.exists(osp.join(out, 'meta', 'img0002.json'))
    assert glob.glob(osp.join(out, 'img_dir', f'img0002_*.{fmt}'))
    assert not osp.exists(osp.join(out, 'summary.json'))
    mtime = os.stat(osp.join(out, 'meta', 'img0001.json')).st_mtime_ns

    convert_btcv(raw, out, split_file=split, progress=False, **fmt_kw)
    assert os.stat(osp.join(out, 'meta',
                            'img0001.json')).st_mtime_ns == mtime
    assert _tree(out) == _tree(ref)

    # a deleted meta + a stray slice + junk temp files -> redone, identical
    os.remove(osp.join(out, 'meta', 'img0035.json'))
    with open(osp.join(out, 'img_dir', f'img0035_0099.{fmt}'), 'wb') as f:
        f.write(b'stale')
    os.makedirs(osp.join(out, 'meta', '.medssl-tmp'), exist_ok=True)
    with open(osp.join(out, 'meta', '.medssl-tmp', '42-0123abcd-img0035.json'),
              'w') as f:
        f.write('{')
    convert_btcv(raw, out, split_file=split, progress=False, **fmt_kw)
    assert _tree(out) == _tree(ref)


def test_format_switch_redoes_cases(tmp_path):
    """A case committed as png is not done for an npy run (and back): it is
    redone, its old slices removed; the result equals a fresh conversion."""
    raw = str(tmp_path / 'raw')
    write_phantom_dataset(raw, 'btcv', num_cases=2, case_ids=(1, 35),
                          shape=(32, 32, 6))
    split = str(tmp_path / 'split.json')
    with open(split, 'w') as f:
        json.dump(dict(train=['img0001'], val=['img0035']), f)
    refs = {}
    for fmt in ('npy', 'png'):
        refs[fmt] = str(tmp_path / f'ref_{fmt}')
        convert_btcv(raw, refs[fmt], split_file=split, progress=False,
                     img_format=fmt)
    out = str(tmp_path / 'out')
    for fmt in ('png', 'npy', 'png'):
        s = convert_btcv(raw, out, split_file=split, progress=False,
                         img_format=fmt)
        assert s['img_format'] == fmt
        assert _tree(out) == _tree(refs[fmt])
    # a meta without img_format means png
    meta_path = osp.join(out, 'meta', 'img0001.json')
    with open(meta_path) as f:
        meta = json.load(f)
    del meta['img_format']
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    assert is_case_done(out, 'img0001', 'png') is not None
    assert is_case_done(out, 'img0001', 'npy') is None
    with pytest.raises(ValueError, match='img_format'):
        convert_btcv(raw, str(tmp_path / 'bad'), split_file=split,
                     progress=False, img_format='tiff')


def test_png_and_npy_give_identical_hu(tmp_path, phantom_btcv_root,
                                       btcv_slices_root):
    """``--img-format png`` (CLI) and the npy default decode to the same HU
    slices; labels, splits and metas (but ``img_format``) are identical, and
    the datasets read either with the matching ``img_suffix``."""
    cli = _load_cli()
    out = str(tmp_path / 'png')
    assert cli.main([phantom_btcv_root, out, '--img-format', 'png']) == 0
    npy_dir = osp.join(btcv_slices_root, 'img_dir')
    png_dir = osp.join(out, 'img_dir')
    npys, pngs = sorted(os.listdir(npy_dir)), sorted(os.listdir(png_dir))
    assert [f[:-4] for f in npys] == [f[:-4] for f in pngs]
    assert all(f.endswith('.png') for f in pngs)
    for a, b in zip(npys, pngs):
        sa = read_slice(osp.join(npy_dir, a))
        sb = read_slice(osp.join(png_dir, b))
        assert sa.dtype == sb.dtype == np.uint16
        assert np.array_equal(decode_hu(sa), decode_hu(sb)), a
    ref, got = _tree(btcv_slices_root), _tree(out)
    for rel in ref:
        if rel.startswith('img_dir'):
            continue
        if rel.startswith('meta') or rel == 'summary.json':
            a, b = json.loads(ref[rel]), json.loads(got[rel])
            assert (a.pop('img_format'), b.pop('img_format')) == ('npy',
                                                                  'png')
            assert a == b, rel
        else:
            assert got[rel] == ref[rel], rel
    from medssl.datasets import BTCVDataset
    pipeline = [dict(type='LoadCTSlice'), dict(type='mmseg.LoadAnnotations')]
    ds_npy = BTCVDataset(data_root=btcv_slices_root,
                         ann_file='splits/val.txt', pipeline=pipeline)
    ds_png = BTCVDataset(data_root=out, ann_file='splits/val.txt',
                         img_suffix='.png', pipeline=pipeline)
    assert ds_png.get_data_info(0)['img_path'].endswith('.png')
    for i in (0, len(ds_npy) - 1):
        a, b = ds_npy[i], ds_png[i]
        assert np.array_equal(a['img'], b['img'])
        assert np.array_equal(a['gt_seg_map'], b['gt_seg_map'])


def _load_cli():
    from tool_scripts import load_script
    return load_script('tools/dataset_converters/btcv.py')


def test_nproc_and_cli_match_serial(tmp_path, phantom_btcv_root,
                                    btcv_slices_root):
    cli = _load_cli()
    out = str(tmp_path / 'par')
    assert cli.main([phantom_btcv_root, out, '--nproc', '2',
                     '--threads', '2']) == 0
    assert _tree(out) == _tree(btcv_slices_root)
    assert filecmp.cmp(osp.join(out, 'summary.json'),
                       osp.join(btcv_slices_root, 'summary.json'),
                       shallow=False)
    assert cli.main([str(tmp_path / 'nothing'), str(tmp_path / 'o')]) == 1


def test_parallel_failure_leaves_no_partial_case(tmp_path):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    write_phantom_dataset(raw, 'btcv', num_cases=4, case_ids=(1, 2, 3, 35),
                          broken=('shape_mismatch', ), shape=(32, 32, 6))
    with pytest.raises(ConversionError, match='img0035: shape mismatch'):
        convert_btcv(raw, out, nproc=2, progress=False)
    metas = {f[:-5] for f in os.listdir(osp.join(out, 'meta'))}
    assert 'img0035' not in metas
    for sub in ('img_dir', 'ann_dir'):
        files = os.listdir(osp.join(out, sub))
        assert all(f.rsplit('_', 1)[0] in metas for f in files), files
        assert not [f for f in files if f.endswith('.tmp')]
