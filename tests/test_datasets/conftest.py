import pytest


@pytest.fixture(autouse=True, scope='package')
def _medssl_scope():
    """Datasets build their pipelines from the default scope: use medssl's
    (as configs do with ``default_scope = 'medssl'``)."""
    from medssl.utils import register_all_modules
    register_all_modules()
