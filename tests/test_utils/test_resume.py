"""medssl.utils.resume.SafeRunner: checkpoint content is data (no config
executed, no path outside the work dir, sane counters), resume is strict,
auto-resume picks a complete checkpoint and says which, one run per work dir
(issue 16)."""
import itertools
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from medssl.utils.checkpoint import CheckpointError
from medssl.utils.resume import SafeRunner
from medssl.utils.workdir_lock import LOCK_NAME, WorkDirLockedError

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'test_engine'))
from toy_models import ToyModel, make_toy_runner  # noqa: E402

sys.path.pop(0)


class ToyWithWhitening(ToyModel):
    """ToyModel plus a buffer (like a decorrelation config on top of MoCo)."""

    def __init__(self):
        super().__init__()
        self.register_buffer('whitening', torch.eye(3))


_names = itertools.count()


def safe_runner(work_dir, model=None, max_iters=3, **kwargs):
    """make_toy_runner's Runner, built as a SafeRunner."""
    import mmengine.runner
    real = mmengine.runner.Runner
    mmengine.runner.Runner = SafeRunner
    try:
        return make_toy_runner(
            work_dir, model or ToyModel(), max_iters, momentum=0.9,
            # mmengine keeps one logger per name: a new name per runner
            experiment_name=f'resume_{next(_names)}',
            **kwargs)
    finally:
        mmengine.runner.Runner = real


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A checkpoint of 2 toy iterations (SGD with momentum) and its dict."""
    work = tmp_path_factory.mktemp('trained')
    safe_runner(work, max_iters=2).train()
    path = str(work / 'iter_2.pth')
    return path, torch.load(path, weights_only=False)


def forged(tmp_path, trained, edit, name='forged.pth'):
    """``trained``'s checkpoint with ``edit(ckpt)`` applied, saved."""
    ckpt = torch.load(trained[0], weights_only=False)
    edit(ckpt)
    path = str(tmp_path / name)
    torch.save(ckpt, path)
    return path


def resume(work_dir, path, model=None, max_iters=3):
    runner = safe_runner(work_dir, model, max_iters, resume=True,
                         load_from=path)
    runner.train()
    return runner


def refusal(work_dir, tmp_path, trained, edit):
    """``(path, message)``: the CheckpointError of resuming from ``trained``'s
    checkpoint with ``edit`` applied."""
    path = forged(tmp_path, trained, edit)
    with pytest.raises(CheckpointError) as err:
        resume(work_dir, path)
    return path, str(err.value)


def test_resume_continues_and_never_executes_meta_config(tmp_path, trained):
    marker = tmp_path / 'PWNED'

    def evil(ckpt):
        code = f"import os\nos.system('touch {marker}')\ngpu_ids = [0, 1]\n"
        ckpt['meta']['config'] = ckpt['meta']['cfg'] = code
        ckpt['message_hub']['runtime_info']['cfg'] = code

    path = forged(tmp_path, trained, evil)
    runner = resume(tmp_path / 'work', path)
    assert not marker.exists()  # Config.fromstring would have run it
    assert runner.iter == 3
    # training continued from the checkpoint's weights: one more SGD step
    assert not torch.equal(runner.model.linear.weight,
                           trained[1]['state_dict']['linear.weight'])
    assert runner.model.steps.item() == 3  # the buffer was restored (2 + 1)
    # the new checkpoint carries this run's config text, not the file's
    saved = torch.load(tmp_path / 'work' / 'iter_3.pth', weights_only=False)
    assert 'PWNED' not in saved['message_hub']['runtime_info'].get('cfg', '')
    assert 'PWNED' not in saved['meta'].get('cfg', '')


def _set_info(key, value):

    def edit(ckpt):
        ckpt['message_hub']['runtime_info'][key] = value

    return edit


def test_runtime_paths_must_lie_inside_the_work_dir(tmp_path, trained):
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'data.txt').write_text('precious')
    work = tmp_path / 'work'
    cases = {
        'best_ckpt': str(victim),
        'best_ckpt_mDice': str(work / '..' / 'victim'),
    }
    for key, value in cases.items():
        path, message = refusal(work, tmp_path, trained,
                                _set_info(key, value))
        assert message == (
            f'{path}: runtime_info {key} = {value!r} lies outside the work '
            f'dir {work}; refusing a checkpoint whose paths point elsewhere '
            '(the checkpoint hook deletes them)')
    # the work dir itself is not "inside" it either
    path = forged(tmp_path, trained, _set_info('best_ckpt', str(work)))
    with pytest.raises(CheckpointError, match='lies outside the work dir'):
        resume(work, path)
    # inside, but not a best_* file of the hook
    path = forged(tmp_path, trained,
                  _set_info('best_ckpt', str(work / 'iter_1.pth')))
    with pytest.raises(CheckpointError, match='is not a best_'):
        resume(work, path)
    path = forged(tmp_path, trained, _set_info('keep_ckpt_ids', ['../x']))
    with pytest.raises(CheckpointError, match='keep_ckpt_ids .* is not a '
                       'list of non-negative integers'):
        resume(work, path)
    assert (victim / 'data.txt').read_text() == 'precious'
    # a path mmengine only records (the checkpoint's own folder, elsewhere)
    # is dropped, not trusted; a best_ckpt inside the work dir is accepted
    runner = safe_runner(work, resume=True, load_from=forged(
        tmp_path, trained, _set_info('last_ckpt', '/etc/passwd')))
    runner.load_or_resume()
    assert 'last_ckpt' not in runner.message_hub.runtime_info
    path = forged(tmp_path, trained, _set_info(
        'best_ckpt', str(work / 'best_loss_iter_2.pth')))
    assert resume(work, path).iter == 3


@pytest.mark.parametrize('key,value,problem', [
    ('iter', 10**9, "meta['iter'] = 1000000000 is beyond this run's "
     'max_iters = 3'),
    ('iter', -49, "meta['iter'] = -49 is not a non-negative integer"),
    ('iter', 2.0, "meta['iter'] = 2.0 is not a non-negative integer"),
    ('iter', True, "meta['iter'] = True is not a non-negative integer"),
    ('epoch', -1, "meta['epoch'] = -1 is not a non-negative integer"),
    ('seed', 'x', "meta['seed'] = 'x' is not an integer"),
])
def test_counters_must_be_sane(tmp_path, trained, key, value, problem):

    def edit(ckpt):
        ckpt['meta'][key] = value

    path, message = refusal(tmp_path / 'work', tmp_path, trained, edit)
    assert message.startswith(f'{path}: {problem}')


def test_resume_is_strict_about_model_keys(tmp_path, trained):
    path = trained[0]
    with pytest.raises(CheckpointError) as err:
        resume(tmp_path / 'w1', path, ToyWithWhitening())
    assert str(err.value) == (
        f'{path}: cannot resume ToyWithWhitening strictly: 1 model keys '
        'missing from it: whitening (1) (resume needs the config that wrote '
        'the checkpoint; to start a new run from its weights use load_from '
        'without --resume)')

    def reshape(ckpt):
        ckpt['state_dict']['linear.weight'] = torch.zeros(1, 4)
        ckpt['state_dict']['extra.bias'] = torch.zeros(1)

    _, message = refusal(tmp_path / 'w2', tmp_path, trained, reshape)
    assert '1 unexpected keys: extra.bias (1) | 1 shape mismatches: ' \
        'linear.weight: checkpoint (1, 4) vs model (1, 3)' in message


def test_resume_of_another_optimizer_setup_names_the_file(tmp_path, trained):

    def two_groups(ckpt):
        groups = ckpt['optimizer']['param_groups']
        groups.append(dict(groups[0], params=[2]))

    path, message = refusal(tmp_path / 'w1', tmp_path, trained, two_groups)
    assert message.startswith(
        f'{path}: optimizer has 2 param groups with [2, 1] parameters, this '
        'config builds 1 with [2] (a checkpoint of a different model')

    def momentum_shape(ckpt):
        ckpt['optimizer']['state'][0]['momentum_buffer'] = torch.zeros(5)

    _, message = refusal(tmp_path / 'w2', tmp_path, trained, momentum_shape)
    assert 'optimizer state momentum_buffer of parameter 0 has shape (5,), ' \
        'the parameter (1, 3)' in message


def test_nonfinite_weights_refused_unless_allowed(tmp_path, trained,
                                                  monkeypatch):

    def nan(ckpt):
        ckpt['state_dict']['linear.bias'][0] = float('nan')

    path, message = refusal(tmp_path / 'w1', tmp_path, trained, nan)
    assert message.startswith(
        f'{path}: non-finite weights (NaN/inf) in state_dict.linear.bias '
        '(1/1 non-finite); refusing')
    # load_from (no resume) is refused too
    runner = safe_runner(tmp_path / 'w2', load_from=path)
    with pytest.raises(CheckpointError, match='non-finite weights'):
        runner.train()
    monkeypatch.setenv('MEDSSL_ALLOW_NONFINITE', '1')
    with pytest.warns(UserWarning, match='non-finite weights'):
        runner = safe_runner(tmp_path / 'w3', max_iters=2, resume=True,
                             load_from=path)
        runner.load_or_resume()
    assert torch.isnan(runner.model.linear.bias).all()


def test_auto_resume_picks_complete_checkpoint_and_logs_it(tmp_path,
                                                           trained):
    work = tmp_path / 'work'
    work.mkdir()
    data = open(trained[0], 'rb').read()
    (work / 'iter_2.pth').write_bytes(data)
    (work / 'iter_3.pth').write_bytes(data[:-40])  # truncated
    (work / '.iter_4.pth.tmp-1-0123abcd').write_bytes(data)
    (work / 'last_checkpoint').write_text(str(work / 'iter_9.pth'))  # gone
    runner = safe_runner(work, max_iters=3, resume=True)
    runner.train()
    assert runner.iter == 3
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert f'auto-resume: continuing from {work / "iter_2.pth"} (newest ' \
        'complete checkpoint in the work dir)' in log
    assert 'resumed epoch: 0, iter: 2' in log
    empty = tmp_path / 'empty'
    runner = safe_runner(empty, max_iters=1, resume=True)
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert f'auto-resume: no complete iter_*.pth / epoch_*.pth in {empty}: ' \
        'starting from scratch' in log


def test_work_dir_lock_keeps_a_second_run_out(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    lock = work / LOCK_NAME
    busy = subprocess.Popen(['sleep', '60'])
    try:
        import socket
        lock.write_text(f'{busy.pid} {socket.gethostname()}\n')
        with pytest.raises(WorkDirLockedError) as err:
            safe_runner(work)
        assert str(err.value) == (
            f'{lock}: work dir busy: locked by running process {busy.pid}; '
            'wait for it, use another --work-dir, or delete the lock if that '
            'run is gone')
        assert os.listdir(work) == [LOCK_NAME]  # no log folder written
    finally:
        busy.kill()
        busy.wait()
    # the owner died: its stale lock is taken over, and released at the end
    runner = safe_runner(work, max_iters=1)
    assert lock.read_text().split()[0] == str(os.getpid())
    runner.train()
    assert not lock.exists()
    assert osp.isfile(work / 'iter_1.pth')


def test_resume_with_other_param_schedulers_names_the_file(tmp_path, trained):

    def two_schedulers(ckpt):
        ckpt['param_schedulers'] = [dict(last_step=2), dict(last_step=2)]

    path = forged(tmp_path, trained, two_schedulers)
    runner = safe_runner(tmp_path / 'w', resume=True, load_from=path,
                         param_scheduler=dict(type='ConstantLR', factor=0.5,
                                              by_epoch=False, end=2))
    with pytest.raises(CheckpointError) as err:
        runner.train()
    assert str(err.value) == (
        f'{path}: 2 parameter schedulers in the checkpoint, 1 in this config '
        '(resume needs the config that wrote it)')
