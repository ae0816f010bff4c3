"""medssl.utils.config: unknown / misspelt top-level keys are errors with a
"did you mean", helper variables of the shipped configs are not;
medssl.utils.config_schema: the same below the top level, against the
signatures of the registered classes (medssl.utils.signature_keys; issue 16)."""
import copy
import glob
import os.path as osp
import runpy

import pytest
from mmengine.config import Config

from medssl.utils.config import KNOWN_KEYS, ConfigKeyError, check_config_keys
from medssl.utils.config_schema import check_config_schema
from medssl.utils.signature_keys import accepted_keys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MOCO = osp.join(ROOT, 'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py')
SEG = osp.join(ROOT, 'configs/benchmarks/mmsegmentation/btcv/'
               'fcn_r18-d8_1xb2-20it_btcv-phantom.py')


def test_every_shipped_config_passes():
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                             recursive=True))
    assert len(paths) > 50
    for path in paths:
        cfg = Config.fromfile(path)
        check_config_keys(cfg.keys(), None, path)  # raises on a problem
        check_config_schema(cfg, path)  # nested keys too


def test_cfg_option_typo_is_an_error_with_suggestion():
    keys = Config.fromfile(MOCO).keys()
    with pytest.raises(ConfigKeyError) as err:
        check_config_keys(keys, {'optim_wraper.optimizer.lr': 0.1}, 'c.py')
    assert str(err.value) == (
        "--cfg-options optim_wraper.optimizer.lr: unknown top-level key "
        "'optim_wraper' (neither in c.py nor read by the Runner or the "
        "tools); did you mean 'optim_wrapper'?")
    # helper variables of the config are suggested too
    with pytest.raises(ConfigKeyError, match="did you mean 'data_root'"):
        check_config_keys(keys, {'data_rot': 'x'}, 'c.py')
    # fine: nested keys, helper variables, Runner keys not in the file
    check_config_keys(keys, {'optim_wrapper.optimizer.lr': 0.1,
                             'crop_size': 32, 'experiment_name': 'x',
                             'train_cfg.max_iters': 2}, 'c.py')


def test_misspelt_runner_key_in_the_config_file():
    with pytest.raises(ConfigKeyError) as err:
        check_config_keys(['model', 'defualt_hooks', 'crop_size'], None,
                          'x.py')
    assert str(err.value) == ("x.py: top-level key 'defualt_hooks' is not "
                              'read by the Runner or the tools; did you '
                              "mean 'default_hooks'?")
    # helper variables that do not look like Runner keys are fine
    check_config_keys(['model', 'view_pipeline', 'hu_windows', 'local_head',
                       'decorrelation', 'max_iters', 'dataset_type'], None,
                      'x.py')
    assert {'optim_wrapper', 'param_scheduler', 'test_pipeline',
            'model_wrapper_cfg'} <= KNOWN_KEYS


def _cfg(path=MOCO):
    return copy.deepcopy(Config.fromfile(path))


def _schema_error(cfg, options):
    cfg.merge_from_dict(options)
    with pytest.raises(ConfigKeyError) as err:
        check_config_schema(cfg, 'c.py')
    return str(err.value)


@pytest.mark.parametrize('option,message', [
    ('optim_wrapper.optimizer.lrr',
     "c.py: unknown key 'optim_wrapper.optimizer.lrr' for SGD; did you mean "
     "'lr'?"),
    # CheckpointHook takes **kwargs (and crashes with them at the 1st save)
    ('default_hooks.checkpoint.intervl',
     "c.py: unknown key 'default_hooks.checkpoint.intervl' for "
     "CheckpointHook; did you mean 'interval'?"),
    ('train_cfg.max_itrs',
     "c.py: unknown key 'train_cfg.max_itrs' for IterBasedTrainLoop; did "
     "you mean 'max_iters'?"),
    # CTSliceDataset's own and BaseDataset's (**kwargs forwarded) arguments
    ('train_dataloader.dataset.data_rot',
     "c.py: unknown key 'train_dataloader.dataset.data_rot' for "
     "CTSliceDataset; did you mean 'data_root'?"),
    ('train_dataloader.batch_sise',
     "c.py: unknown key 'train_dataloader.batch_sise' for DataLoader; did "
     "you mean 'batch_size'?"),
    ('train_dataloader.sampler.shufle',
     "c.py: unknown key 'train_dataloader.sampler.shufle' for "
     "InfiniteSampler; did you mean 'shuffle'?"),
    # LoadCTSlice has no __init__ of its own: it takes no argument at all
    ('train_dataloader.dataset.pipeline.0.to_float',
     "c.py: unknown key 'train_dataloader.dataset.pipeline.0.to_float' for "
     "LoadCTSlice (it takes no arguments)"),
    ('param_scheduler.0.eta_mn',
     "c.py: unknown key 'param_scheduler.0.eta_mn' for CosineAnnealingLR; "
     "did you mean 'eta_min'?"),
    ('model.backbone.dept',
     "c.py: unknown key 'model.backbone.dept' for ResNet; did you mean "
     "'depth'?"),
    ('model.neck.hid_channels_',
     "c.py: unknown key 'model.neck.hid_channels_' for MoCoV2Neck; did you "
     "mean 'hid_channels'?"),
])
def test_nested_typo_names_key_path_and_suggestion(option, message):
    cfg = _cfg()
    if option.startswith('train_dataloader.dataset.pipeline.0'):
        assert cfg.train_dataloader.dataset.pipeline[0].type == 'LoadCTSlice'
        cfg.train_dataloader.dataset.pipeline[0].to_float = True
        options = {}
    elif option.startswith('param_scheduler.0'):
        cfg.param_scheduler[0].eta_mn = 0.1
        options = {}
    else:
        options = {option: 1}
    assert _schema_error(cfg, options) == message


def test_nested_typo_in_mmseg_scoped_types():
    # FCNHead(**kwargs) forwards them to BaseDecodeHead: both checked
    msg = _schema_error(_cfg(SEG), {'model.decode_head.num_clases': 14})
    assert msg == ("c.py: unknown key 'model.decode_head.num_clases' for "
                   "FCNHead; did you mean 'num_classes'?")
    msg = _schema_error(_cfg(SEG), {
        'model.decode_head.loss_decode.los_weight': 1.0})
    assert "'model.decode_head.loss_decode.los_weight' for " \
        "CrossEntropyLoss; did you mean 'loss_weight'?" in msg
    msg = _schema_error(_cfg(SEG), {'test_evaluator.hd_95': True})
    assert "'test_evaluator.hd_95' for VolumeDiceMetric; did you mean " \
        "'hd95'?" in msg
    msg = _schema_error(_cfg(SEG), {'optim_wrapper.paramwise_cfg': dict(
        norm_decay_mul=0.0)})
    assert "'optim_wrapper.paramwise_cfg.norm_decay_mul' for " \
        "DefaultOptimWrapperConstructor; did you mean " \
        "'norm_decay_mult'?" in msg


def test_schema_allows_builder_keys_scopes_and_open_kwargs():
    cfg = _cfg(SEG)
    cfg.model.decode_head.type = 'mmseg.FCNHead'
    cfg.model.decode_head._scope_ = 'mmseg'
    cfg.default_hooks.checkpoint.priority = 'VERY_LOW'  # register_hook's
    cfg.param_scheduler[0].convert_to_iter_based = True  # the Runner's
    cfg.train_dataloader.persistent_workers = False
    check_config_schema(cfg, 'c.py')
    # a class with **kwargs it does not forward accepts anything
    assert accepted_keys(dict) is None
    from mmcv.transforms import RandomResize
    assert accepted_keys(RandomResize) is None
    import torch
    assert accepted_keys(torch.optim.SGD) >= {'lr', 'momentum',
                                              'weight_decay'}


@pytest.mark.parametrize('loop,value,problem', [
    ('max_iters', 0, 'train_cfg.max_iters=0 trains nothing'),
    ('max_iters', -3, 'train_cfg.max_iters=-3 trains nothing'),
    ('max_iters', 2.5, 'train_cfg.max_iters=2.5 is not an integer'),
    ('max_epochs', 0, 'train_cfg.max_epochs=0 trains nothing'),
])
def test_loop_that_trains_nothing_is_refused(loop, value, problem):
    cfg = _cfg()
    if loop == 'max_epochs':
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=value)
    else:
        cfg.train_cfg[loop] = value
    with pytest.raises(ConfigKeyError) as err:
        check_config_schema(cfg, 'c.py')
    assert str(err.value) == f'c.py: {problem}: it must be a positive ' \
        'integer'
    cfg.train_cfg[loop] = 1
    check_config_schema(cfg, 'c.py')


@pytest.mark.parametrize('option,problem', [
    ('optim_wrapper.optimizer.lrr=0.1', "did you mean 'lr'?"),
    ('default_hooks.checkpoint.intervl=5', "did you mean 'interval'?"),
    ('train_cfg.max_iters=0', 'train_cfg.max_iters=0 trains nothing'),
])
def test_train_tool_stops_before_building(option, problem, tmp_path, capsys):
    """tools/train.py: one line, exit code 1, no work dir written."""
    mod = runpy.run_path(osp.join(ROOT, 'tools', 'train.py'))
    work = tmp_path / 'work'
    argv = [MOCO, '--work-dir', str(work), '--cfg-options', option]
    with pytest.raises(SystemExit) as ex:
        mod['run_main'](lambda: mod['main'](argv), mod['CLEAN_ERRORS'])
    assert ex.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'ConfigKeyError: {MOCO}: ')
    assert problem in err[0]
    assert not work.exists()
