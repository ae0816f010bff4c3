"""High-level APIs: checkpoint conversion and volume
inference. Import submodules explicitly, e.g.
``from medssl.apis.inference import init_segmentor, inference_volume`` or
``from medssl.apis.segment_files import segment_path``."""
from .model_converters import convert_selfsup_to_mmseg

__all__ = ['convert_selfsup_to_mmseg']
