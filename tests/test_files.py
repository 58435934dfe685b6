# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""``projects.van_lska.apis.files.folder_written_atomically``: the folder
appears whole or not at all, and a previous one survives a failure."""

import os

import pytest

from projects.van_lska.apis.files import folder_written_atomically


def _tree(folder):
    """``{relative path: text}`` of the files below ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path) as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def _write(folder, text):
    os.makedirs(os.path.join(folder, 'sub'))
    with open(os.path.join(folder, 'sub', 'a.txt'), 'w') as f:
        f.write(text)


def test_new_folder_appears_only_when_complete(tmp_path):
    out = tmp_path / 'parent' / 'data'
    with folder_written_atomically(str(out)) as tmp:
        assert os.path.dirname(tmp) == str(out.parent)
        assert os.listdir(tmp) == []
        _write(tmp, 'one')
        assert not out.exists()  # nothing at OUT while writing
    assert _tree(out) == {os.path.join('sub', 'a.txt'): 'one'}
    assert os.listdir(out.parent) == ['data']  # no temporary folder left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # as os.makedirs


def test_failure_keeps_the_previous_folder(tmp_path):
    out = tmp_path / 'data'
    with folder_written_atomically(out) as tmp:
        _write(tmp, 'old')
    with pytest.raises(RuntimeError, match='half way'):
        with folder_written_atomically(out, force=True) as tmp:
            _write(tmp, 'new')
            raise RuntimeError('half way')
    assert _tree(out) == {os.path.join('sub', 'a.txt'): 'old'}
    assert os.listdir(tmp_path) == ['data']


def test_force_replaces_and_removes_stale_files(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'stale.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not empty.*force=True'):
        with folder_written_atomically(out):
            pytest.fail('the block must not run')
    with folder_written_atomically(out, force=True) as tmp:
        _write(tmp, 'new')
    assert _tree(out) == {os.path.join('sub', 'a.txt'): 'new'}
    assert os.listdir(tmp_path) == ['data']


def test_empty_folder_is_replaced_without_force(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    with folder_written_atomically(out) as tmp:
        _write(tmp, 'new')
    assert _tree(out) == {os.path.join('sub', 'a.txt'): 'new'}


def test_a_file_in_the_way_is_refused(tmp_path):
    out = tmp_path / 'data'
    out.write_text('a file')
    with pytest.raises(FileExistsError, match='is not a folder'):
        with folder_written_atomically(out, force=True):
            pytest.fail('the block must not run')
    assert out.read_text() == 'a file'
    assert os.listdir(tmp_path) == ['data']
