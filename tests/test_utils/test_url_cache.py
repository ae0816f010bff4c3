"""A checkpoint URL is cached under a hash of the whole URL: two URLs with
the same file name get their own files (issue 16)."""
import os

import pytest
import torch
from torch import nn

from medssl.models.backbones.verified_pretrained import VerifiedPretrained
from medssl.utils.url_cache import url_cache_path

A = 'https://a.example.org/v1/model.pth'
B = 'https://b.example.org/v2/model.pth'


def test_cache_name_hashes_the_whole_url(tmp_path):
    d = str(tmp_path)
    names = {url_cache_path(u, d) for u in
             (A, B, A + '?version=2', 'http://a.example.org/v1/model.pth')}
    assert len(names) == 4  # host, path, query and scheme all count
    assert url_cache_path(A, d) == url_cache_path(A, d)
    name = os.path.basename(url_cache_path(A, d))
    assert name.endswith('-model.pth') and len(name) == 16 + 1 + 9
    assert url_cache_path('https://h/dir/', d).endswith('-checkpoint.pth')


@pytest.fixture
def fake_downloads(tmp_path, monkeypatch):
    """URL -> a Linear(2, 1) state dict with weight = its number; counts
    the downloads."""
    served = {A: 1.0, B: 2.0}
    calls = []

    def download(url, dst, progress=True):
        calls.append(url)
        w = torch.full((1, 2), served[url])
        torch.save({'state_dict': {'weight': w, 'bias': torch.zeros(1)}},
                   dst)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    return calls


def test_same_file_name_different_urls_load_their_own_weights(
        fake_downloads, tmp_path):
    loaded = []
    for url in (A, B, A):
        m = nn.Linear(2, 1)
        VerifiedPretrained(checkpoint=url)(m)
        loaded.append(m.weight.detach().flatten().tolist())
    assert loaded == [[1.0, 1.0], [2.0, 2.0], [1.0, 1.0]]
    assert fake_downloads == [A, B]  # the third load is the cached A
    cached = sorted(os.listdir(tmp_path / 'hub' / 'checkpoints'))
    assert len(cached) == 2 and all(n.endswith('-model.pth') for n in cached)
