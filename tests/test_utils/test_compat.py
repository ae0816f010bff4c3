"""The mmcv-lite shim: mmseg imports, compiled ops fail clearly, real ops win."""
import sys
import types

import pytest
import torch

from medssl.utils import compat


def test_mmseg_models_import_and_pure_torch_op_works():
    import mmseg.models  # noqa: F401  (imports mmcv.ops eagerly)
    from mmcv.ops import point_sample

    feats = torch.arange(16.).reshape(1, 1, 4, 4)
    # point (0.5, 0.5) in [0, 1] coords is the centre: mean of the 4 middle px
    out = point_sample(feats, torch.tensor([[[0.5, 0.5]]]),
                       align_corners=False)
    assert out.shape == (1, 1, 1)
    assert out.item() == pytest.approx((5 + 6 + 9 + 10) / 4)


def test_compiled_op_raises_clear_error():
    from mmcv.ops import sigmoid_focal_loss
    with pytest.raises(NotImplementedError, match='sigmoid_focal_loss') as e:
        sigmoid_focal_loss(
            torch.zeros(2, 3), torch.zeros(2).long(), 2.0, 0.25, None, 'mean')
    assert 'full mmcv' in str(e.value)
    assert isinstance(e.value, compat.CompiledOpUnavailableError)


def test_real_extension_is_left_alone(monkeypatch):
    real = types.ModuleType('mmcv._ext')
    monkeypatch.setitem(sys.modules, 'mmcv._ext', real)
    assert compat.real_mmcv_ext_available()
    assert compat.install_mmcv_ext_shim() is False
    assert sys.modules['mmcv._ext'] is real


def test_shim_installed_when_missing(monkeypatch):
    monkeypatch.delitem(sys.modules, 'mmcv._ext', raising=False)
    monkeypatch.setattr(compat.importlib.util, 'find_spec', lambda name: None)
    assert compat.install_mmcv_ext_shim() is True
    ext = sys.modules['mmcv._ext']
    assert getattr(ext, 'is_medssl_placeholder')
    with pytest.raises(NotImplementedError, match='nms'):
        ext.nms(None)
