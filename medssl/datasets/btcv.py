"""BTCVDataset (13 abdominal organs + background) and the shared
case-fraction logic of the CT segmentation datasets."""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset

from medssl.registry import DATASETS
from .converters.ct_io import parse_slice_name

__all__ = ['select_case_fraction', 'CTSegDataset', 'BTCVDataset']


def case_of(slice_name: str) -> str:
    """``img0001_0042`` -> ``img0001`` (DESIGN.md slice-name contract)."""
    return parse_slice_name(slice_name)[0]


def select_case_fraction(cases: Sequence[str], fraction: float,
                         seed: int = 0,
                         num_cases: Optional[int] = None) -> List[str]:
    """Deterministically choose ``max(1, round(fraction * n))`` whole cases
    (exactly ``num_cases`` when given).

    The cases are sorted, permuted with ``np.random.default_rng(seed)`` and
    the first k are taken, so for one seed smaller fractions are subsets of
    larger ones. Returns the chosen cases sorted.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'case_fraction must be in (0, 1], got {fraction}')
    cases = sorted(set(cases))
    if not cases:
        return []
    if num_cases is not None:
        if not 1 <= num_cases <= len(cases):
            raise ValueError(f'num_cases must be in [1, {len(cases)}] (the '
                             f'cases of the split), got {num_cases}')
        k = int(num_cases)
    else:
        k = max(1, int(round(fraction * len(cases))))
    order = np.random.default_rng(seed).permutation(len(cases))
    return sorted(cases[i] for i in order[:k])


class CTSegDataset(BaseSegDataset):
    """mmseg dataset over converted CT slices (``img_dir`` of uint16 ``.npy``
    slices, or 16-bit PNGs with ``img_suffix='.png'`` for a conversion made
    with ``--img-format png``; ``ann_dir`` of uint8 PNGs; ``ann_file`` = a
    split file of slice names).

    Each data_info also carries ``case`` (the volume id) and ``slice_name``.

    Args:
        case_fraction: use this fraction of the volumes (at least one),
            chosen as whole cases, deterministic per ``fraction_seed``.
        fraction_seed: seed of the case choice.
        num_cases: use exactly this many volumes instead (overrides
            ``case_fraction``; the label-efficiency configs ``*_<k>vol``).
    """

    def __init__(self,
                 ann_file: str = '',
                 img_suffix: str = '.npy',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 case_fraction: float = 1.0,
                 fraction_seed: int = 0,
                 num_cases: Optional[int] = None,
                 data_prefix: dict = dict(
                     img_path='img_dir', seg_map_path='ann_dir'),
                 **kwargs) -> None:
        if not 0 < case_fraction <= 1:
            raise ValueError(
                f'case_fraction must be in (0, 1], got {case_fraction}')
        self.case_fraction = case_fraction
        self.fraction_seed = fraction_seed
        self.num_cases = num_cases
        self.selected_cases: List[str] = []
        super().__init__(
            ann_file=ann_file, img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label, data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        if not self.ann_file or osp.isdir(self.ann_file):
            raise ValueError(f'{self.__class__.__name__} needs ann_file = a '
                             f'split file of slice names, got '
                             f'{self.ann_file!r}')
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{self.__class__.__name__}: split file {self.ann_file} not '
                f'found')
        with open(self.ann_file) as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise ValueError(f'{self.__class__.__name__}: split file '
                             f'{self.ann_file} lists no slices')
        img_dir = self.data_prefix.get('img_path', None) or ''
        ann_dir = self.data_prefix.get('seg_map_path', None)
        data_list = []
        for name in names:
            info = dict(img_path=osp.join(img_dir, name + self.img_suffix))
            if ann_dir is not None:
                info['seg_map_path'] = osp.join(ann_dir,
                                                name + self.seg_map_suffix)
            info['label_map'] = self.label_map
            info['reduce_zero_label'] = self.reduce_zero_label
            info['seg_fields'] = []
            info['slice_name'] = name
            info['case'] = case_of(name)
            data_list.append(info)
        all_cases = sorted({d['case'] for d in data_list})
        chosen = select_case_fraction(all_cases, self.case_fraction,
                                      self.fraction_seed, self.num_cases)
        self.selected_cases = chosen
        if len(chosen) < len(all_cases):
            keep = set(chosen)
            data_list = [d for d in data_list if d['case'] in keep]
            print_log(
                f'{self.__class__.__name__}: case_fraction='
                f'{self.case_fraction} num_cases={self.num_cases} '
                f'seed={self.fraction_seed}: '
                f'{len(chosen)}/{len(all_cases)} cases {chosen} '
                f'({len(data_list)} slices)', logger='current')
        return data_list


@DATASETS.register_module()
class BTCVDataset(CTSegDataset):
    """BTCV 13-organ segmentation on converted slices
    (``tools/dataset_converters/btcv.py``).

    Example::

        dict(type='BTCVDataset', data_root='data/btcv',
             ann_file='splits/train.txt', case_fraction=0.25, pipeline=[...])
    """
    METAINFO = dict(
        classes=('background', 'spleen', 'right kidney', 'left kidney',
                 'gallbladder', 'esophagus', 'liver', 'stomach', 'aorta',
                 'inferior vena cava', 'portal and splenic vein', 'pancreas',
                 'right adrenal gland', 'left adrenal gland'),
        palette=[[0, 0, 0], [255, 127, 80], [0, 128, 255], [0, 200, 120],
                 [255, 230, 0], [170, 110, 40], [200, 40, 40],
                 [255, 160, 200], [220, 20, 60], [70, 70, 230],
                 [0, 200, 200], [240, 180, 60], [150, 60, 200],
                 [110, 200, 60]])
