"""Where the ablation's inputs and outputs live: the phantom BTCV cases,
the downstream configs and the work-dir layout."""
import json
import os.path as osp
from typing import List, Sequence

from medssl.utils.process import REPO

__all__ = ['PROBE', 'FINETUNE', 'BTCV_PHANTOM_IDS', 'btcv_phantom_ids',
           'pretrain_dir', 'collapse_dir', 'probe_dir']

PROBE = 'configs/benchmarks/mmsegmentation/btcv/' \
    'linear_r18_1xb2-20it_btcv-phantom.py'
# downstream configs of the fine-tuning arm: {pretrained?: config}
FINETUNE = {
    False: 'configs/benchmarks/mmsegmentation/btcv/'
    'fcn_r18-d8_1xb2-20it_btcv-phantom.py',
    True: 'configs/benchmarks/mmsegmentation/btcv/'
    'fcn_r18-d8_1xb2-20it_btcv-phantom_ssl.py',
}
_SPLIT = osp.join(REPO, 'medssl', 'datasets', 'splits', 'btcv_13organ.json')


def btcv_phantom_ids(counts: Sequence[int] = (10, 2, 6)) -> List[int]:
    """Case numbers of a BTCV phantom set by the shipped split: the first
    ``counts = (train, val, test)`` volumes of each split, sorted."""
    with open(_SPLIT) as f:
        split = json.load(f)
    ids = []
    for name, n in zip(('train', 'val', 'test'), counts):
        if not 0 < n <= len(split[name]):
            raise ValueError(f'{_SPLIT}: {name} has {len(split[name])} '
                             f'volumes, asked for {n}')
        ids += [int(case[len('img'):]) for case in split[name][:n]]
    return sorted(ids)


# the ablation's default set: 10 train, 2 val, 6 test volumes
BTCV_PHANTOM_IDS = btcv_phantom_ids()


def pretrain_dir(work: str, name: str, seed: int) -> str:
    return osp.join(work, 'pretrain', name, f'seed{seed}')


def collapse_dir(work: str, name: str, seed: int) -> str:
    return osp.join(work, 'collapse', name, f'seed{seed}')


def probe_dir(work: str, name: str, seed: int) -> str:
    return osp.join(work, 'probe', name, f'seed{seed}')
