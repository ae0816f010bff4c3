"""Run the model tests single-threaded.

The tensors here are tiny; on a shared 2-core machine two OpenMP threads
competing with other processes made a 0.12 s train step take up to 4.7 s
(measured), while one thread is never slower for these sizes.
"""
import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
