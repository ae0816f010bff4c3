"""What a conversion is asked to do: the case list, the run options and the
error every converter raises for bad input."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

from .ct_io import IMG_FORMATS

__all__ = ['ConversionError', 'CaseSpec', 'ConvertOptions',
           'check_img_format', 'nifti_stem']


class ConversionError(RuntimeError):
    """Bad converter input; the message names the case, file and problem."""


@dataclass
class CaseSpec:
    case: str
    image: str
    label: Optional[str] = None


@dataclass
class ConvertOptions:
    """Options of one conversion run.

    Attributes:
        label_ids: allowed label ids (None: no label check).
        require_label: a case without label file is an error.
        keep_empty: keep slices without body (all air).
        min_body_fraction: drop slices whose body-pixel fraction (HU > -500)
            is <= this (ignored with ``keep_empty``).
        threads: threads encoding/writing the slices of one case (output
            is identical for any value).
        img_format: image slice format, ``'npy'`` (uint16 ``.npy``, default:
            ~2x faster to read and much faster to write than PNG, ~2.4x the
            disk) or ``'png'`` (16-bit PNG). Labels are uint8 PNG either way.
    """
    label_ids: Optional[Sequence[int]] = None
    require_label: bool = False
    keep_empty: bool = True
    min_body_fraction: float = 0.0
    affine_atol: float = 1e-3
    threads: int = 1
    img_format: str = 'npy'
    extra: Dict = field(default_factory=dict)

    def __post_init__(self):
        check_img_format(self.img_format)


def check_img_format(img_format: str) -> str:
    if img_format not in IMG_FORMATS:
        raise ValueError(f'img_format must be one of {sorted(IMG_FORMATS)}, '
                         f'got {img_format!r}')
    return img_format


def is_nifti(path: str) -> bool:
    """Exactly ``*.nii.gz`` or ``*.nii`` (``img0003.nii.gz.bak`` is not)."""
    return osp.basename(path).endswith(('.nii.gz', '.nii'))


def glob_nifti(root: str, pattern: str) -> list:
    """Sorted NIfTI files matching ``root/pattern``; other matches (e.g. a
    stray ``img0003.nii.gz.bak`` for ``img*.nii*``) are ignored with a
    warning naming them."""
    import glob
    import warnings
    found = sorted(glob.glob(osp.join(root, pattern)))
    ignored = [p for p in found if not is_nifti(p)]
    if ignored:
        warnings.warn(f'ignored {len(ignored)} file(s) matching {pattern!r} '
                      f'that are not .nii/.nii.gz: {ignored[:5]}')
    return [p for p in found if is_nifti(p)]


def nifti_stem(path: str) -> str:
    name = osp.basename(path)
    for ext in ('.nii.gz', '.nii'):
        if name.endswith(ext):
            return name[:-len(ext)]
    return osp.splitext(name)[0]

