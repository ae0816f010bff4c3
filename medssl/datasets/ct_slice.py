"""CTSliceDataset: unlabelled converted CT slices for pretraining."""
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset

from medssl.registry import DATASETS
from .converters.ct_io import parse_slice_name

__all__ = ['CTSliceDataset']


@DATASETS.register_module()
class CTSliceDataset(BaseDataset):
    """Unlabelled CT slices (no fake labels).

    ``ann_file`` lists slice names (``<case>_<z:04d>``, no suffix), one per
    line; data_info = ``dict(img_path, case, slice_name)``.
    ``img_path`` = ``<data_root>/<img_path prefix>/<name><img_suffix>``;
    ``img_suffix`` is ``'.npy'`` (the converters' default) or ``'.png'``
    for a conversion made with ``--img-format png``.

    Example::

        dict(type='CTSliceDataset', data_root='data/abdomen1k',
             ann_file='splits/pretrain.txt',
             data_prefix=dict(img_path='img_dir'), pipeline=[...])
    """
    METAINFO = dict(classes=None)

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'splits/pretrain.txt',
                 data_prefix: dict = dict(img_path='img_dir'),
                 img_suffix: str = '.npy',
                 **kwargs) -> None:
        self.img_suffix = img_suffix
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'CTSliceDataset: split file {self.ann_file} not found')
        with open(self.ann_file) as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise ValueError(
                f'CTSliceDataset: split file {self.ann_file} lists no slices')
        img_dir = self.data_prefix.get('img_path', '')
        return [
            dict(
                img_path=osp.join(img_dir, name + self.img_suffix),
                case=parse_slice_name(name)[0],
                slice_name=name) for name in names
        ]
