"""Where a checkpoint URL is cached: one file per full URL.

torch.hub-style caching by the URL's file name alone hands
``https://a.org/v1/model.pth`` the file downloaded earlier for
``https://b.org/v2/model.pth`` (or for ``.../model.pth?version=2``): a
``VerifiedPretrained`` init would then load another model's weights
silently. The cache name starts with a hash of the whole URL and keeps the
file name for people looking into the folder.
"""
import hashlib
import os.path as osp
from urllib.parse import urlparse

__all__ = ['url_cache_path']

#: hex digits of the URL's sha256 in the cache name (64 bits: no collision
#: between the handful of URLs a cache folder sees)
HASH_CHARS = 16


def url_cache_path(url: str, cache_dir: str) -> str:
    """``<cache_dir>/<sha256(url)[:16]>-<file name>`` for ``url``.

    The whole URL (scheme, host, path, query) feeds the hash, so two URLs
    that differ anywhere get different files; a URL without a file name
    (``https://host/dir/``) gets ``checkpoint.pth``.
    """
    digest = hashlib.sha256(url.encode('utf-8')).hexdigest()[:HASH_CHARS]
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    return osp.join(cache_dir, f'{digest}-{name}')
