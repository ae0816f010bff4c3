"""medssl.utils.atomic.atomic_write_bytes(path, data): the one writer of
checkpoints (hidden temporary next to the file, fsync) and of converter
outputs (temporary in a private folder, no fsync)."""
import os

import pytest

import medssl.utils.atomic as atomic
from medssl.utils.atomic import atomic_write_bytes


def test_private_tmp_dir_without_fsync_then_durable_default(tmp_path,
                                                            monkeypatch):
    synced = []
    monkeypatch.setattr(atomic.os, 'fsync', synced.append)
    out, tmp_dir = tmp_path / 'out', tmp_path / 'out' / '.medssl-tmp'
    path = out / 'a.png'
    atomic_write_bytes(str(path), b'abc', tmp_dir=str(tmp_dir), durable=False)
    assert path.read_bytes() == b'abc'
    assert synced == [] and os.listdir(tmp_dir) == []
    atomic_write_bytes(str(path), memoryview(b'xyz'))  # no copy needed
    assert path.read_bytes() == b'xyz'
    assert len(synced) == 2  # the file, then its folder (the rename)
    assert sorted(os.listdir(out)) == ['.medssl-tmp', 'a.png']


def test_failed_rename_removes_the_temporary_keeps_the_old_file(
        tmp_path, monkeypatch):
    path, tmp_dir = tmp_path / 'a.json', tmp_path / '.medssl-tmp'
    atomic_write_bytes(str(path), b'old')

    def broken(src, dst):
        assert os.path.dirname(src) == str(tmp_dir)  # written there first
        raise OSError('rename failed')

    monkeypatch.setattr(atomic.os, 'replace', broken)
    with pytest.raises(OSError, match='rename failed'):
        atomic_write_bytes(str(path), b'new', tmp_dir=str(tmp_dir),
                           durable=False)
    assert path.read_bytes() == b'old' and os.listdir(tmp_dir) == []
