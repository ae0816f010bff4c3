"""LoadCTSlice: stored uint16 slice (.npy or 16-bit PNG) -> float32 HU image
(H, W, 1)."""
from mmcv.transforms import BaseTransform

from medssl.datasets.converters.ct_io import decode_hu, read_slice
from medssl.registry import TRANSFORMS

__all__ = ['LoadCTSlice']


@TRANSFORMS.register_module()
class LoadCTSlice(BaseTransform):
    """Load a converted CT slice (see ``ct_io``) as HU.

    The format follows the file suffix: ``.npy`` (the converters' default,
    read with ``np.load``) or ``.png`` (16-bit PNG, ``cv2.imread``); both
    hold ``round(HU) + 1024`` as a 2D uint16 array.

    Required keys: ``img_path``. Added keys: ``img`` (float32 HU, shape
    (H, W, 1)), ``img_shape``, ``ori_shape`` ((H, W)).

    Raises ``OSError`` naming the file if it is missing or cannot be read
    and ``TypeError`` naming the file if it is not a 2D uint16 slice -- an
    8-bit image (uint8/int8 PNG or npy) is refused with its value range:
    its pixel values are not HU, whatever range they span.
    """

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        try:
            stored = read_slice(path)
        except OSError as e:
            raise OSError(f'LoadCTSlice: {e}') from e
        except TypeError as e:
            raise TypeError(f'LoadCTSlice: {e}') from e
        img = decode_hu(stored)[..., None]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
