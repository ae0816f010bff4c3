"""medssl.utils.checkpoint: weights-only reading with an explicit allow-list,
errors naming the file, strict loading, atomic writing, resume candidates."""
import multiprocessing
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from medssl.utils.checkpoint import (CheckpointError, find_resume_checkpoint,
                                     load_checkpoint, load_model_checkpoint)


class RunsCode:
    """Unpickling this runs ``touch <marker>`` (what an attacker ships)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class CallsEval:

    def __reduce__(self):
        return (eval, ('1 + 1', ))


class GetsAttr:  # builtins.getattr is allowed only for HistoryBuffer

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


@pytest.fixture
def bad_files(tmp_path):
    marker = tmp_path / 'PWNED'
    files = {}

    def save(name, obj):
        files[name] = str(tmp_path / f'{name}.pth')
        torch.save(obj, files[name])

    save('system', dict(state_dict={}, x=RunsCode(marker)))
    save('eval', dict(x=CallsEval()))
    save('getattr', dict(x=GetsAttr()))
    save('tensor', torch.zeros(3))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), good)
    data = good.read_bytes()
    files['truncated'] = str(tmp_path / 'truncated.pth')
    open(files['truncated'], 'wb').write(data[:len(data) // 2])
    files['empty'] = str(tmp_path / 'empty.pth')
    open(files['empty'], 'wb').close()
    files['text'] = str(tmp_path / 'text.pth')
    open(files['text'], 'w').write('hello\n')
    files['pickle'] = str(tmp_path / 'pickle.pth')
    open(files['pickle'], 'wb').write(pickle.dumps(dict(a=1)))
    files['missing'] = str(tmp_path / 'missing.pth')
    return files, marker


@pytest.mark.parametrize('name,problem', [
    ('system', 'refused to unpickle global posix.system'),
    ('eval', 'refused to unpickle global eval'),
    ('getattr', 'refused to unpickle global builtins.getattr'),
    ('tensor', 'holds a Tensor, not a checkpoint dict'),
    ('truncated', 'truncated or corrupt checkpoint'),
    ('empty', 'empty file (0 bytes)'),
    ('text', 'not a PyTorch checkpoint (a text file'),
    ('pickle', 'not a PyTorch checkpoint (a foreign file'),
    ('missing', 'no such file'),
])
def test_bad_checkpoints_name_file_and_problem(bad_files, name, problem):
    files, marker = bad_files
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(files[name])
    assert str(err.value).startswith(f'{files[name]}: {problem}')
    # mmengine's own loader (Runner.load_checkpoint, resume, Pretrained)
    # goes through the same reader once register_all_modules() ran
    with pytest.raises(CheckpointError, match='^' + files[name]):
        _load_checkpoint(files[name], map_location='cpu')
    assert not marker.exists()  # no code from the file ever ran


def test_real_mmengine_checkpoint_loads(toy_runner_checkpoint):
    """A checkpoint the Runner wrote (message_hub HistoryBuffers with numpy
    arrays, optimizer, schedulers) reads back weights-only."""
    ckpt = load_checkpoint(toy_runner_checkpoint)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(ckpt)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert type(buf).__name__ == 'HistoryBuffer'
    assert len(buf.data[0]) == 2  # 2 iterations logged
    ref = torch.load(toy_runner_checkpoint, weights_only=False)
    assert torch.equal(ckpt['state_dict']['linear.weight'],
                       ref['state_dict']['linear.weight'])
    assert buf.mean() == ref['message_hub']['log_scalars']['train/loss'].mean()


@pytest.fixture
def toy_runner_checkpoint(tmp_path):
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                                'test_engine'))
    try:
        from toy_models import ToyModel, make_toy_runner
    finally:
        sys.path.pop(0)
    make_toy_runner(tmp_path, ToyModel(), max_iters=2, momentum=0.0,
                    experiment_name=f'ckpt_{osp.basename(tmp_path)}').train()
    return str(tmp_path / 'iter_2.pth')


def test_strict_model_loading_names_prefixes(tmp_path):
    model = torch.nn.Sequential()
    model.add_module('backbone', torch.nn.Linear(2, 3))
    model.add_module('head', torch.nn.Linear(3, 1))
    ssl = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}
    ssl['neck.mlp.weight'] = torch.zeros(2, 3)
    torch.save(dict(state_dict=ssl), tmp_path / 'ssl.pth')
    with pytest.raises(CheckpointError) as err:
        load_model_checkpoint(model, str(tmp_path / 'ssl.pth'))
    assert str(err.value) == (
        f'{tmp_path / "ssl.pth"}: does not fit Sequential: 2/4 model keys '
        'missing: head.bias (1), head.weight (1) | 1 unexpected keys: '
        'neck.mlp.* (1) (a pretraining checkpoint for a segmentation config? '
        'convert it with selfsup2mmseg and train the head first)')
    # tolerated when asked for; the matching keys are loaded
    load_model_checkpoint(model, str(tmp_path / 'ssl.pth'), max_mismatch=3)
    assert torch.equal(model.backbone.weight, ssl['backbone.weight'])
    full = {'module.' + k: v + 1 for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=full), tmp_path / 'full.pth')
    load_model_checkpoint(model, str(tmp_path / 'full.pth'))
    assert torch.equal(model.head.bias, full['module.head.bias'])
    shaped = dict(full, **{'module.head.weight': torch.zeros(1, 4)})
    torch.save(dict(state_dict=shaped), tmp_path / 'shape.pth')
    with pytest.raises(CheckpointError, match=r'1 shape mismatches: '
                       r'head.weight: checkpoint \(1, 4\) vs model \(1, 3\)'):
        load_model_checkpoint(model, str(tmp_path / 'shape.pth'))


def _save_and_die(work_dir):
    """A Runner saving iter_2 then killed (SIGKILL-like) inside the write of
    iter_4, between writing the bytes and the rename."""
    import medssl.utils.atomic as atomic
    from medssl.utils import register_all_modules
    register_all_modules()
    real_fsync = atomic.os.fsync

    def fsync(fd):
        if 'iter_4.pth' in os.readlink(f'/proc/self/fd/{fd}'):
            os._exit(9)
        real_fsync(fd)

    atomic.os.fsync = fsync
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)),
                                'test_engine'))
    from toy_models import ToyModel, make_toy_runner
    make_toy_runner(work_dir, ToyModel(), max_iters=4, ckpt_interval=2,
                    momentum=0.0, experiment_name='killed').train()


def test_kill_during_save_leaves_no_file_under_the_final_name(tmp_path):
    work = str(tmp_path / 'work')
    p = multiprocessing.get_context('fork').Process(target=_save_and_die,
                                                    args=(work, ))
    p.start()
    p.join(120)
    assert p.exitcode == 9
    names = sorted(os.listdir(work))
    assert 'iter_2.pth' in names and 'iter_4.pth' not in names
    stray = [n for n in names if n.startswith('.iter_4.pth.tmp-')]
    assert len(stray) == 1  # the killed write, under a hidden name only
    assert load_checkpoint(osp.join(work, 'iter_2.pth'))['meta']['iter'] == 2
    # --resume continues from iter_2, never from the temporary
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_2.pth')


def test_failed_save_cleans_up_and_keeps_old_file(tmp_path, monkeypatch):
    import medssl.utils.atomic as atomic
    path = str(tmp_path / 'iter_2.pth')
    atomic.atomic_write_bytes(path, b'old')

    def broken(fd):
        raise OSError('disk full')

    monkeypatch.setattr(atomic.os, 'fsync', broken)
    with pytest.raises(OSError, match='disk full'):
        atomic.atomic_write_bytes(path, b'new-but-never-complete')
    assert os.listdir(tmp_path) == ['iter_2.pth']
    assert open(path, 'rb').read() == b'old'


def test_find_resume_checkpoint(tmp_path):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    assert find_resume_checkpoint(work) is None
    for n in ('iter_2.pth', 'iter_10.pth', '.iter_12.pth.tmp-7-0123abcd',
              'best_mDice_iter_12.pth', 'iter_11.pth.tmp'):
        torch.save(dict(meta=dict(iter=1)), osp.join(work, n))
    # a truncated iter_11 (complete zips end with the central directory)
    data = open(osp.join(work, 'iter_10.pth'), 'rb').read()
    open(osp.join(work, 'iter_11.pth'), 'wb').write(data[:-30])
    # a symlink to a checkpoint elsewhere is not a file of the work dir
    torch.save(dict(meta=dict(iter=1)), tmp_path / 'outside.pth')
    os.symlink(tmp_path / 'outside.pth', osp.join(work, 'iter_13.pth'))
    # no last_checkpoint: newest complete iter_*.pth by number (not name)
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_10.pth')
    last = osp.join(work, 'last_checkpoint')
    open(last, 'w').write(osp.join(work, 'iter_2.pth'))
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_2.pth')
    # last_checkpoint names a file that is gone, cut short, a temporary,
    # truncated, a best_* or outside the work dir: the newest complete one
    for named in ('iter_12.pth', 'iter_', '.iter_12.pth.tmp-7-0123abcd',
                  'iter_11.pth', 'best_mDice_iter_12.pth', 'iter_13.pth',
                  '../outside.pth'):
        open(last, 'w').write(osp.join(work, named))
        assert find_resume_checkpoint(work) == \
            osp.join(work, 'iter_10.pth'), named


# ------------------------------------------------ content is data (issue 16)
def _rezip(src, dst, method):
    """``src``'s zip records rewritten with compression ``method``."""
    import zipfile
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', method) as z:
        for info in zin.infolist():
            z.writestr(info.filename, zin.read(info.filename))


def test_tensors_are_bounded_by_the_bytes_on_disk(tmp_path):
    import zipfile
    bomb = tmp_path / 'bomb.pth'
    # 4 bytes on disk, 4 GB once cloned (what selfsup2mmseg would do)
    torch.save(dict(state_dict={'backbone.w': torch.zeros(1).expand(
        10**6, 1000)}), bomb)
    assert osp.getsize(bomb) < 2000
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(bomb))
    assert str(err.value) == (
        f'{bomb}: tensor state_dict.backbone.w of shape (1000000, 1000) '
        '(4000000000 bytes) is a view of 4 bytes on disk (strides (0, 0): an '
        'expanded / overlapping tensor); refusing a tensor larger than its '
        'storage')
    overlap = tmp_path / 'overlap.pth'
    torch.save(dict(w=torch.zeros(8).as_strided((6, 3), (1, 1))), overlap)
    with pytest.raises(CheckpointError, match='tensor w of shape .6, 3. '
                       r'\(72 bytes\) is a view of 32 bytes on disk'):
        load_checkpoint(str(overlap))
    # a legitimate view sharing a larger storage is fine
    base = torch.arange(10.)
    fine = tmp_path / 'fine.pth'
    torch.save(dict(a=base[2:5], b=base, c=base[:1].expand(1, 1, 3)),
               fine)
    assert load_checkpoint(str(fine))['a'].tolist() == [2., 3., 4.]
    assert load_checkpoint(str(fine))['c'].stride() == (0, 0, 0)
    # a DEFLATE record: torch.load would inflate it without a bound
    big = tmp_path / 'big.pth'
    torch.save(dict(state_dict={'w': torch.zeros(10**5)}), big)
    deflated = tmp_path / 'deflated.pth'
    _rezip(big, deflated, zipfile.ZIP_DEFLATED)
    assert torch.load(deflated, weights_only=True)['state_dict']['w'].numel() \
        == 10**5  # torch itself accepts it
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(deflated))
    assert str(err.value).startswith(
        f'{deflated}: compressed zip record big/data.pkl (method 8, ')
    assert 'torch.save never compresses' in str(err.value)


def test_non_string_state_dict_keys_are_refused(tmp_path):
    path = tmp_path / 'intkeys.pth'
    torch.save(dict(state_dict={0: torch.ones(1), 'b': torch.ones(1)}), path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(path))
    assert str(err.value) == (
        f'{path}: state dict has 1 non-string keys (e.g. 0 of type int); a '
        'state dict maps parameter names to tensors')
    bare = tmp_path / 'bare.pth'
    torch.save({('a', 1): torch.ones(1)}, bare)
    with pytest.raises(CheckpointError, match="e.g. .'a', 1. of type tuple"):
        load_checkpoint(str(bare))


@pytest.fixture
def nan_backbone(tmp_path):
    """An SSL-style checkpoint with one NaN in a backbone weight."""
    model = torch.nn.Sequential()
    model.add_module('backbone', torch.nn.Linear(2, 3))
    state = {f'backbone.{k}': v.clone() for k, v in
             model.backbone.state_dict().items()}
    state['backbone.weight'][1, 1] = float('inf')
    path = tmp_path / 'nan.pth'
    torch.save(dict(meta=dict(), state_dict=state), path)
    return model, str(path)


def test_nonfinite_weights_refused_by_every_loader(nan_backbone, tmp_path,
                                                   monkeypatch, capsys):
    import runpy

    from medssl.models.backbones.verified_pretrained import VerifiedPretrained
    model, path = nan_backbone
    problem = (f'{path}: non-finite weights (NaN/inf) in '
               'state_dict.backbone.weight (1/6 non-finite); refusing to load '
               'them (environment variable MEDSSL_ALLOW_NONFINITE=1 loads them '
               'anyway)')
    before = model.backbone.weight.detach().clone()
    loaders = {
        'load_checkpoint': lambda: load_checkpoint(path),
        # mmengine's reader: --resume, load_from, Pretrained init
        'mmengine': lambda: _load_checkpoint(path, map_location='cpu'),
        # tools/test.py, tools/infer_volume.py (medssl.apis.inference)
        'load_model_checkpoint': lambda: load_model_checkpoint(model, path),
        'VerifiedPretrained': lambda: VerifiedPretrained(
            path, prefix='backbone.')(model.backbone),
    }
    for name, load in loaders.items():
        with pytest.raises(CheckpointError) as err:
            load()
        assert str(err.value) == problem, name
    assert torch.equal(model.backbone.weight, before)  # nothing loaded
    convert = runpy.run_path(osp.join(osp.dirname(__file__), '..', '..',
                                      'tools', 'model_converters',
                                      'selfsup2mmseg.py'))['main']
    out = tmp_path / 'out.pth'
    assert convert([path, str(out), '--no-whitening']) == 1
    assert capsys.readouterr().err == f'CheckpointError: {problem}\n'
    assert not out.exists()
    # explicitly allowed: loaded, with a warning naming the tensor
    monkeypatch.setenv('MEDSSL_ALLOW_NONFINITE', '1')
    with pytest.warns(UserWarning, match='state_dict.backbone.weight'):
        load_model_checkpoint(model, path)
    assert torch.isinf(model.backbone.weight[1, 1])
    monkeypatch.delenv('MEDSSL_ALLOW_NONFINITE')
    with pytest.raises(CheckpointError, match='non-finite'):
        load_checkpoint(path, allow_nonfinite=False)
    assert load_checkpoint(path, allow_nonfinite=True)['meta'] == {}
