"""Runner factory for engine tests (no data files)."""
import pytest
from toy_models import make_toy_runner


@pytest.fixture
def toy_runner(tmp_path):
    """``toy_runner(model, max_iters=3, **runner_kwargs) -> Runner``."""

    def make(model, max_iters=3, **kwargs):
        return make_toy_runner(tmp_path, model, max_iters, **kwargs)

    return make
