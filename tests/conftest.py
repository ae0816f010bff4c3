"""Shared session fixtures: tiny CT phantoms (raw NIfTI layouts) and their
converted slice folders. Other test packages use these; keep the names.

- ``phantom_btcv_root``: BTCV layout, 5 cases img0001-img0003 (train) and
  img0039, img0040 (val), ~64x64 in plane, 12-15 slices, varied orientation.
- ``phantom_abdomen1k_root``: AbdomenCT-1K layout, 4 cases (ImagePart1/2 +
  Mask), 12-15 slices of which the most superior one is all air.
- ``btcv_slices_root`` / ``abdomen1k_slices_root``: the converted folders
  (``img_dir``, ``ann_dir``, ``meta``, ``splits``, ``summary.json``).
  Treat them as read-only.
"""
import os.path as osp

import pytest

BTCV_PHANTOM_IDS = (1, 2, 3, 39, 40)


@pytest.fixture(autouse=True)
def _medssl_default_scope():
    """Every test starts in the ``medssl`` scope, as configs do.

    A Runner built by an earlier test (e.g. with ``default_scope='mmengine'``)
    leaves its scope current, and ``MODELS.build`` then looks in the wrong
    registry; the order of tests must not matter.
    """
    from mmengine.registry import DefaultScope

    from medssl.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('medssl'):
        yield


def _phantoms(factory, dataset, **kwargs):
    from medssl.datasets.phantom_writer import write_phantom_dataset
    root = str(factory.mktemp(f'phantom_{dataset}'))
    write_phantom_dataset(root, dataset, shape=(64, 64, 12), **kwargs)
    return root


def _converted(factory, raw, dataset):
    from medssl.datasets import converters
    out = str(factory.mktemp(f'{dataset}_slices'))
    getattr(converters, f'convert_{dataset}')(raw, out, progress=False)
    assert osp.isfile(osp.join(out, 'summary.json'))
    return out


@pytest.fixture(scope='session')
def phantom_btcv_root(tmp_path_factory):
    return _phantoms(tmp_path_factory, 'btcv', seed=0,
                     num_cases=len(BTCV_PHANTOM_IDS),
                     case_ids=BTCV_PHANTOM_IDS)


@pytest.fixture(scope='session')
def phantom_abdomen1k_root(tmp_path_factory):
    return _phantoms(tmp_path_factory, 'abdomen1k', seed=1, num_cases=4)


@pytest.fixture(scope='session')
def btcv_slices_root(phantom_btcv_root, tmp_path_factory):
    return _converted(tmp_path_factory, phantom_btcv_root, 'btcv')


@pytest.fixture(scope='session')
def abdomen1k_slices_root(phantom_abdomen1k_root, tmp_path_factory):
    return _converted(tmp_path_factory, phantom_abdomen1k_root, 'abdomen1k')
