"""AbdomenCT1KDataset (liver, kidney, spleen, pancreas + background)."""
from medssl.registry import DATASETS
from .btcv import CTSegDataset

__all__ = ['AbdomenCT1KDataset']


@DATASETS.register_module()
class AbdomenCT1KDataset(CTSegDataset):
    """AbdomenCT-1K masks on converted slices
    (``tools/dataset_converters/abdomen1k.py``); same ``case_fraction`` /
    ``fraction_seed`` logic as :class:`BTCVDataset`."""
    METAINFO = dict(
        classes=('background', 'liver', 'kidney', 'spleen', 'pancreas'),
        palette=[[0, 0, 0], [200, 40, 40], [0, 128, 255], [255, 127, 80],
                 [240, 180, 60]])
