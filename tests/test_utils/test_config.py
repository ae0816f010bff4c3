"""medssl.utils.config: unknown / misspelt top-level keys are errors with a
"did you mean", helper variables of the shipped configs are not."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from medssl.utils.config import (KNOWN_KEYS, ConfigKeyError,
                                 check_config_keys)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MOCO = osp.join(ROOT, 'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py')


def test_every_shipped_config_passes():
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                             recursive=True))
    assert len(paths) > 50
    for path in paths:
        cfg = Config.fromfile(path)
        check_config_keys(cfg.keys(), None, path)  # raises on a problem


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
