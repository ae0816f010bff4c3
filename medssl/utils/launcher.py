"""Launcher helpers shared by tools/train.py and tools/test.py."""
import os
import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work on machines without CUDA.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` (an error
    without CUDA) and DDP must not get a CUDA device id for a CPU model. On a
    CPU-only machine this switches nccl to gloo, initialises the process
    group itself from torchrun's environment (the Runner then skips its own
    ``init_dist``) and wraps the model with ``device_ids=None``.
    """
    cfg.setdefault('env_cfg', dict())
    cfg.env_cfg.setdefault('dist_cfg', dict(backend='nccl'))
    if torch.cuda.is_available():
        return
    if cfg.env_cfg.dist_cfg.get('backend', 'nccl') == 'nccl':
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('launcher', 'none') == 'none':
        return
    cfg.setdefault('model_wrapper_cfg', dict(type='MMDistributedDataParallel'))
    cfg.model_wrapper_cfg.device_ids = None
    if cfg.launcher == 'pytorch' and not dist.is_initialized():
        dist.init_process_group(
            backend=cfg.env_cfg.dist_cfg.backend,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))


def load_run_config(config: str,
                    cfg_options: Optional[dict] = None,
                    launcher: str = 'none',
                    work_dir: Optional[str] = None) -> Config:
    """The config tools/train.py and tools/test.py start from.

    Loads ``config``, rejects unknown / misspelt top-level keys of the file
    and of ``cfg_options`` (:func:`medssl.utils.config.check_config_keys`),
    then nested keys of the merged config
    (:func:`medssl.utils.config_schema.check_config_schema`),
    sets ``launcher``, merges ``cfg_options`` and sets ``work_dir`` with the
    priority command line > config > ``./work_dirs/<config name>``.
    """
    from medssl.utils.config import check_config_keys
    cfg = Config.fromfile(config)
    check_config_keys(cfg.keys(), cfg_options, config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    from medssl.utils.config_schema import check_config_schema
    check_config_schema(cfg, config)  # nested keys, before any build
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg
