"""tools/train.py on the tiny phantom configs: runs, resumes exactly, DDP on CPU."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = {
    'mocov2': 'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py',
    'local': 'configs/selfsup/medmoco/mocov2-local_r18_1xb4-6it_phantom.py',
    'decor': 'configs/selfsup/medmoco/mocov2-decor_r18_1xb4-6it_phantom.py',
    'full':
    'configs/selfsup/medmoco/mocov2-local-decor_r18_1xb4-6it_phantom.py',
}


def _train(config, work_dir, data_root, *extra):
    from tools_train import main  # noqa: E402  (tools/ is put on sys.path)
    main([
        osp.join(REPO, config), '--work-dir', str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        # unique names: mmengine keeps loggers/visualizers per name, and
        # several runs share this process
        f'experiment_name={osp.basename(str(work_dir))}',
        f'visualizer.name=vis_{osp.basename(str(work_dir))}', *extra
    ])


@pytest.fixture(autouse=True, scope='module')
def _tools_on_path():
    from tool_scripts import load_script
    sys.modules['tools_train'] = load_script('tools/train.py')
    yield
    sys.modules.pop('tools_train', None)


def _child_config(tmp_path, base, module, hook):
    """A config inheriting ``base`` that adds a hook from ``module``."""
    path = tmp_path / f'with_{module}.py'
    path.write_text(f"_base_ = ['{osp.join(REPO, base)}']\n"
                    f"custom_imports = dict(imports=['{module}'])\n"
                    f"custom_hooks = [{hook}]\n")
    return str(path)


def _scalar_files(work_dir):
    return set(
        glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json')))


def _losses(work_dir, skip=()):
    """iteration -> logged scalars, from the LocalVisBackend's scalars.json
    files of the runs in ``work_dir`` (except the files in ``skip``)."""
    files = _scalar_files(work_dir) - set(skip)
    out = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['step']] = rec
    return out


@pytest.mark.slow
@pytest.mark.parametrize('name', list(TINY))
def test_tiny_config_trains(name, tmp_path, abdomen1k_slices_root):
    _train(TINY[name], tmp_path, abdomen1k_slices_root,
           'train_cfg.max_iters=2')
    logs = _losses(tmp_path)
    assert sorted(logs) == [1, 2]
    for rec in logs.values():
        assert torch.isfinite(torch.tensor(rec['loss']))
    if name in ('local', 'full'):
        assert all('loss_local' in r and r['loss_local'] > 0
                   for r in logs.values())
        assert all('loss_global' in r for r in logs.values())


@pytest.mark.slow
def test_kill_and_resume_continues_the_same_loss_curve(
        tmp_path, abdomen1k_slices_root):
    cfg = TINY['full']
    _train(cfg, tmp_path / 'uninterrupted', abdomen1k_slices_root)
    ref = _losses(tmp_path / 'uninterrupted')
    assert sorted(ref) == [1, 2, 3, 4, 5, 6]

    # Interrupted: checkpoint at iteration 3, killed during iteration 5.
    interrupted = tmp_path / 'interrupted'
    hook = tmp_path / 'kill_hook.py'
    hook.write_text(textwrap.dedent('''
        from mmengine.hooks import Hook
        from medssl.registry import HOOKS

        @HOOKS.register_module()
        class KillAt(Hook):
            def __init__(self, at):
                self.at = at
            def before_train_iter(self, runner, batch_idx, data_batch=None):
                if runner.iter + 1 == self.at:
                    raise KeyboardInterrupt('killed')
    '''))
    child = _child_config(tmp_path, cfg, 'kill_hook',
                          "dict(type='KillAt', at=5)")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(KeyboardInterrupt):
            _train(child, interrupted, abdomen1k_slices_root)
    finally:
        sys.path.remove(str(tmp_path))
    before = _losses(interrupted)
    # same seed, same config: the first iterations repeat exactly
    assert sorted(before) == [1, 2, 3, 4]
    for it in (1, 2, 3, 4):
        assert before[it]['loss'] == ref[it]['loss']
    first_run_files = _scalar_files(interrupted)
    assert osp.isfile(interrupted / 'iter_3.pth')
    assert not osp.isfile(interrupted / 'iter_6.pth')
    # the checkpoint carries the EMA key encoder, the queue and whitening
    state = torch.load(interrupted / 'iter_3.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert any(k.startswith('encoder_k.') for k in state)
    assert {'queue', 'queue_ptr', 'decorrelation.running_mean',
            'decorrelation.running_whitening'} <= set(state)

    from tools_train import main
    main([
        osp.join(REPO, cfg), '--work-dir', str(interrupted), '--resume',
        '--cfg-options',
        f'train_dataloader.dataset.data_root={abdomen1k_slices_root}',
        'experiment_name=resumed', 'visualizer.name=vis_resumed'
    ])
    resumed = _losses(interrupted, skip=first_run_files)
    assert sorted(resumed) == [4, 5, 6]
    for it in (4, 5, 6):
        for key in ('loss', 'loss_global', 'loss_local'):
            assert resumed[it][key] == pytest.approx(ref[it][key], rel=1e-5,
                                                     abs=1e-6), (it, key)


DUMP_HOOK = '''
import torch, torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from medssl.registry import HOOKS

@HOOKS.register_module()
class DumpWeights(Hook):
    def after_run(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        rank = dist.get_rank() if dist.is_initialized() else 0
        torch.save({k: v.detach().cpu() for k, v in
                    model.state_dict().items()},
                   f"{runner.work_dir}/weights_rank{rank}.pth")
'''


@pytest.mark.slow
def test_dist_train_two_cpu_processes_end_identical(tmp_path,
                                                    abdomen1k_slices_root):
    (tmp_path / 'dump_hook.py').write_text(DUMP_HOOK)
    child = _child_config(tmp_path, TINY['full'], 'dump_hook',
                          "dict(type='DumpWeights')")
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}:{REPO}',
               PORT=str(29500 + os.getpid() % 1000), OMP_NUM_THREADS='1')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    work = tmp_path / 'work'
    cmd = [
        'bash', osp.join(REPO, 'tools', 'dist_train.sh'),
        child, '2', '--work-dir', str(work), '--cfg-options',
        f'train_dataloader.dataset.data_root={abdomen1k_slices_root}',
        'train_cfg.max_iters=3'
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "'backend': 'gloo'" in proc.stdout + proc.stderr
    w0 = torch.load(work / 'weights_rank0.pth')
    w1 = torch.load(work / 'weights_rank1.pth')
    assert w0.keys() == w1.keys()
    # Parameters (query and EMA key encoder), the queue and the all-reduced
    # whitening statistics are identical. BatchNorm running stats are
    # per-rank by DDP's design (rank 0's are broadcast before each forward
    # and saved), so they are left out.
    bn_stats = ('running_mean', 'running_var', 'num_batches_tracked')
    compared = [k for k in w0 if k.startswith('decorrelation.')
                or not k.endswith(bn_stats)]
    assert 'decorrelation.running_whitening' in compared
    assert 'queue' in compared and 'backbone.layer4.1.conv2.weight' in compared
    for k in compared:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0,
                                   msg=lambda m, k=k: f'{k}: {m}')
    # keys of both ranks went into the shared queue: 3 iterations x 2 ranks
    # x 4 images (so the run really was distributed)
    assert int(w0['queue_ptr']) == 3 * 2 * 4
    # rank 0's checkpoint is what both ranks ended with
    ckpt = torch.load(work / 'iter_3.pth', map_location='cpu',
                      weights_only=False)['state_dict']
    assert all(torch.equal(ckpt[k].cpu(), w0[k]) for k in compared)


def test_command_line_to_config(tmp_path):
    from tools_train import build_config, parse_args
    cfg_file = osp.join(REPO, TINY['full'])
    cfg = build_config(parse_args([cfg_file]))
    assert cfg.work_dir.endswith(osp.join(
        'work_dirs', 'mocov2-local-decor_r18_1xb4-6it_phantom'))
    assert cfg.resume is False and cfg.optim_wrapper.type == 'OptimWrapper'
    if not torch.cuda.is_available():  # nccl is impossible without CUDA
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'

    cfg = build_config(parse_args([
        cfg_file, '--work-dir', str(tmp_path), '--resume', '--amp',
        '--auto-scale-lr', '--seed', '7', '--dist-backend', 'gloo',
        '--cfg-options', 'model.local_weight=1.0'
    ]))
    assert cfg.work_dir == str(tmp_path)
    assert cfg.resume is True and cfg.load_from is None  # latest in work_dir
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.randomness.seed == 7
    assert cfg.model.local_weight == 1.0

    cfg = build_config(parse_args([cfg_file, '--resume', 'some/iter_3.pth']))
    assert cfg.resume is True and cfg.load_from == 'some/iter_3.pth'


# ------------------------------------------- resume on the command line (16)
TOY_MODULE = '''
from toy_models import ToyData, ToyModel
import torch
from medssl.registry import DATASETS, MODELS


class ToyWithWhitening(ToyModel):
    def __init__(self):
        super().__init__()
        self.register_buffer('whitening', torch.eye(3))


MODELS.register_module('CliToyModel', module=ToyModel, force=True)
MODELS.register_module('CliToyWhitening', module=ToyWithWhitening,
                       force=True)
DATASETS.register_module('CliToyData', module=ToyData, force=True)
'''

TOY_CONFIG = '''
custom_imports = dict(imports=['cli_toy'])
default_scope = 'medssl'
model = dict(type='CliToyModel')
train_dataloader = dict(
    dataset=dict(type='CliToyData'), batch_size=4, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
train_cfg = dict(by_epoch=False, max_iters=3)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                     by_epoch=False))
'''


@pytest.fixture
def toy_cli(tmp_path, monkeypatch, capsys):
    """``run(work_dir, *args) -> (exit code, stderr)``: tools/train.py as
    its ``__main__`` runs it (``run_main``), on a toy config."""
    (tmp_path / 'cli_toy.py').write_text(TOY_MODULE)
    (tmp_path / 'toy_cfg.py').write_text(TOY_CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(osp.join(REPO, 'tests', 'test_engine'))
    from tools_train import CLEAN_ERRORS, main

    from medssl.cli import run_main
    runs = iter(range(1000))

    def run(work_dir, *args):
        name = f'cli{next(runs)}_{osp.basename(str(tmp_path))}'
        monkeypatch.setattr(sys, 'argv', [
            'train.py', str(tmp_path / 'toy_cfg.py'), '--work-dir',
            str(work_dir), *args, '--cfg-options', f'experiment_name={name}'])
        capsys.readouterr()
        try:
            run_main(main, CLEAN_ERRORS)
        except SystemExit as e:
            return e.code, capsys.readouterr().err
        return 0, capsys.readouterr().err

    return run


def _forge(src, dst, edit):
    ckpt = torch.load(src, weights_only=False)
    edit(ckpt)
    torch.save(ckpt, dst)
    return str(dst)


def test_resume_on_the_command_line_treats_content_as_data(tmp_path, toy_cli):
    first = tmp_path / 'first'
    assert toy_cli(first)[0] == 0
    good = str(first / 'iter_2.pth')
    marker, victim = tmp_path / 'PWNED', tmp_path / 'victim'
    victim.mkdir()

    def config_code(c):
        c['meta']['config'] = f"import os\nos.system('touch {marker}')\n"

    rc, err = toy_cli(tmp_path / 'a', '--resume',
                      _forge(good, tmp_path / 'code.pth', config_code))
    assert (rc, err) == (0, '') and not marker.exists()
    assert osp.isfile(tmp_path / 'a' / 'iter_3.pth')  # trained on

    def best_outside(c):
        c['message_hub']['runtime_info']['best_ckpt'] = str(victim)

    def huge_iter(c):
        c['meta']['iter'] = 10**9

    def nan_weight(c):
        c['state_dict']['linear.weight'][0, 0] = float('nan')

    for name, edit, problem in (
            ('best', best_outside, f'runtime_info best_ckpt = {str(victim)!r}'
             f' lies outside the work dir {tmp_path / "b"}'),
            ('iter', huge_iter, "meta['iter'] = 1000000000 is beyond this "
             "run's max_iters = 3"),
            ('nan', nan_weight, 'non-finite weights (NaN/inf) in '
             'state_dict.linear.weight (1/3 non-finite)')):
        path = _forge(good, tmp_path / f'{name}.pth', edit)
        rc, err = toy_cli(tmp_path / 'b', '--resume', path)
        assert rc == 1 and err.count('\n') == 1, err
        assert err.startswith(f'CheckpointError: {path}: {problem}'), err
        assert not osp.exists(tmp_path / 'b' / 'iter_3.pth')
    assert victim.is_dir()
    # --allow-nonfinite: the NaN checkpoint is loaded (as load_from), and
    # then the NaN loss stops training (not the checkpoint reader)
    nan = str(tmp_path / 'nan.pth')
    rc, err = toy_cli(tmp_path / 'n', '--cfg-options', f'load_from={nan}')
    assert rc == 1 and err.startswith(f'CheckpointError: {nan}: non-finite')
    rc, err = toy_cli(tmp_path / 'n', '--allow-nonfinite', '--cfg-options',
                      f'load_from={nan}')
    assert rc == 1 and err.startswith('NonFiniteLossError: '), err
    assert 'MEDSSL_ALLOW_NONFINITE' not in os.environ  # restored
    # a different model config: strict, names the file and the keys
    rc, err = toy_cli(tmp_path / 'c', '--resume', good, '--cfg-options',
                      'model.type=CliToyWhitening')
    assert rc == 1 and err == (
        f'CheckpointError: {good}: cannot resume ToyWithWhitening strictly: '
        '1 model keys missing from it: whitening (1) (resume needs the config '
        'that wrote the checkpoint; to start a new run from its weights use '
        'load_from without --resume)\n')


def test_auto_resume_and_work_dir_lock_on_the_command_line(tmp_path,
                                                           toy_cli):
    work = tmp_path / 'work'
    assert toy_cli(work, '--cfg-options', 'train_cfg.max_iters=2')[0] == 0
    os.remove(work / 'iter_2.pth')
    # last_checkpoint names the deleted iter_2; iter_1 is cut short
    named = (tmp_path / 'work' / 'last_checkpoint').read_text()
    assert named.endswith('iter_2.pth')
    (work / 'iter_1.pth').write_bytes(b'PK\x03\x04 cut short')
    assert toy_cli(work, '--resume')[0] == 0  # nothing complete: scratch
    logs = sorted(glob.glob(str(work / '*' / '*.log')))
    assert 'auto-resume: no complete iter_*.pth / epoch_*.pth in' in \
        open(logs[-1]).read()
    import socket
    busy = subprocess.Popen(['sleep', '60'])
    try:
        lock = work / '.medssl-train.lock'
        lock.write_text(f'{busy.pid} {socket.gethostname()}\n')
        rc, err = toy_cli(work, '--resume')
        assert rc == 1 and err == (
            f'WorkDirLockedError: {lock}: work dir busy: locked by running '
            f'process {busy.pid}; wait for it, use another --work-dir, or '
            'delete the lock if that run is gone\n')
    finally:
        busy.kill()
        busy.wait()
    rc, err = toy_cli(work, '--resume')  # stale lock taken over
    assert rc == 0 and not lock.exists()
    log = open(sorted(glob.glob(str(work / '*' / '*.log')))[-1]).read()
    assert f'resume: continuing from {work / "iter_3.pth"}' in log
