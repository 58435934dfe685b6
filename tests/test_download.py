# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Checkpoint downloads against a local HTTP server on 127.0.0.1: verified,
atomic, cached, resumed; clean failures for a wrong hash, a truncated body,
a dropped connection and an unreachable host; ``Pretrained`` URLs go
through the same code; ``publish_model`` and ``download_checkpoint``
tools."""

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from projects.van_lska import VAN_LKA
from projects.van_lska.weights.download import (
    ChecksumError,
    DownloadError,
    cache_dir,
    download_checkpoint,
    expected_hash,
    load_from_url,
)

REPO = Path(__file__).resolve().parents[1]
BODY = bytes(range(256)) * 400  # 100 KiB
SHA8 = hashlib.sha256(BODY).hexdigest()[:8]
sys.path.insert(0, str(REPO / 'tools' / 'model_converters'))
sys.path.insert(0, str(REPO / 'tools' / 'misc'))
NAME = f'van-test_in1k_20990101-{SHA8}.pth'


class FileServer:
    """``/<mode>/<file name>`` -> ``files[file name]``, served as ``mode``
    says: ``good`` (with ``Range`` support), ``wrong`` (other bytes),
    ``truncated`` (``Content-Length`` larger than what is sent, then
    close), ``drop`` (close without answering), ``flaky`` (truncated on
    the first request, fine after). Counts requests per path and records
    ``Range`` headers."""

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.hits: Counter = Counter()
        self.ranges: List[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                _, mode, name = self.path.split('/', 2)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                if mode == 'drop':
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == 'wrong':
                    body = bytes(reversed(body))
                start = 0
                header = self.headers.get('Range')
                if header:
                    server.ranges.append(header)
                if header and mode in ('good', 'flaky'):
                    start = int(re.match(r'bytes=(\d+)-', header).group(1))
                    self.send_response(206)
                    self.send_header(
                        'Content-Range',
                        f'bytes {start}-{len(body) - 1}/{len(body)}',
                    )
                else:
                    self.send_response(200)
                self.send_header('Content-Length', str(len(body) - start))
                self.end_headers()
                cut = mode == 'truncated' or (
                    mode == 'flaky' and server.hits[self.path] == 1
                )
                self.wfile.write(body[start : len(body) // 3 if cut else None])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True
        )
        self.thread.start()

    def url(self, mode: str, name: str) -> str:
        return f'http://127.0.0.1:{self.httpd.server_port}/{mode}/{name}'

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.files[NAME] = BODY
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    return tmp_path / 'torch'


def fast(url: str, **kwargs) -> Path:
    """``download_checkpoint`` without waiting between attempts."""
    kwargs.setdefault('backoff', 0)
    kwargs.setdefault('timeout', 5)
    return download_checkpoint(url, **kwargs)


def cache_files() -> List[str]:
    folder = cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ------------------------------------------------------------------ names
def test_cache_dir_honours_torch_home(torch_home, monkeypatch):
    assert cache_dir() == torch_home / 'hub' / 'checkpoints'
    monkeypatch.delenv('TORCH_HOME')
    monkeypatch.setenv('XDG_CACHE_HOME', '/x')
    assert cache_dir() == Path('/x/torch/hub/checkpoints')


@pytest.mark.parametrize(
    'name, prefix',
    [
        ('van-tiny_8xb128_in1k_20220501-385941af.pth', '385941af'),
        ('van-b0_3rdparty_20230522-956f5e0d.pth', '956f5e0d'),
        ('resnet18-f37072fd.pth.tar', 'f37072fd'),
        ('van_tiny_754.pth.tar', None),  # official file: no hash
        ('van-tiny_8xb128_in1k.pth', None),  # text after '-', not hex
        ('x-385941a.pth', None),  # 7 digits
    ],
)
def test_expected_hash(name, prefix):
    assert expected_hash(name) == prefix


# -------------------------------------------------------------- downloads
def test_right_hash_downloads_and_second_call_hits_cache(server, capsys):
    path = fast(server.url('good', NAME))
    assert path == cache_dir() / NAME
    assert path.read_bytes() == BODY
    assert cache_files() == [NAME]  # no .part left
    assert server.hits[f'/good/{NAME}'] == 1
    again = fast(server.url('good', NAME))
    assert again == path
    assert server.hits[f'/good/{NAME}'] == 1  # no network the second time
    assert 'not verified' not in capsys.readouterr().err


def test_dest_folder(server, tmp_path):
    path = fast(server.url('good', NAME), dest_dir=tmp_path / 'ckpts')
    assert path == tmp_path / 'ckpts' / NAME and path.read_bytes() == BODY
    assert cache_files() == []


def test_name_without_hash_is_downloaded_unverified(server, capsys):
    server.files['plain.pth'] = BODY
    path = fast(server.url('good', 'plain.pth'))
    assert path.read_bytes() == BODY
    assert 'not verified' in capsys.readouterr().err


def test_wrong_hash_fails_and_leaves_nothing(server):
    with pytest.raises(ChecksumError, match=f"'{SHA8}' in its name"):
        fast(server.url('wrong', NAME))
    assert cache_files() == []  # neither the final name nor a .part


@pytest.mark.parametrize('mode', ['truncated', 'drop'])
def test_interrupted_transfer_fails_cleanly(server, mode):
    with pytest.raises(DownloadError) as info:
        fast(server.url(mode, NAME), retries=2)
    assert not (cache_dir() / NAME).exists()
    assert server.hits[f'/{mode}/{NAME}'] == 2  # retried once
    message = str(info.value)
    assert server.url(mode, NAME) in message
    assert str(cache_dir() / NAME) in message
    if mode == 'truncated':  # the partial bytes are kept, for a resume
        assert 'run again to resume' in message
        assert cache_files() == [NAME + '.part']
        # the server truncates every time: the retry did resume
        assert server.ranges == [f'bytes={len(BODY) // 3}-']
    else:  # nothing received: no empty .part either
        assert cache_files() == []


def test_interrupted_transfer_resumes_with_range(server):
    path = fast(server.url('flaky', NAME))
    assert path.read_bytes() == BODY
    assert server.hits[f'/flaky/{NAME}'] == 2
    assert server.ranges == [f'bytes={len(BODY) // 3}-']
    assert cache_files() == [NAME]


def test_leftover_part_is_resumed_by_a_later_call(server):
    folder = cache_dir()
    folder.mkdir(parents=True)
    (folder / (NAME + '.part')).write_bytes(BODY[:1000])
    assert fast(server.url('good', NAME)).read_bytes() == BODY
    assert server.ranges == ['bytes=1000-']
    assert cache_files() == [NAME]


def test_unreachable_host_gives_clear_message():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}/x/{NAME}'
    with pytest.raises(DownloadError) as info:
        fast(url, retries=2)
    message = str(info.value)
    assert 'cannot be reached' in message
    assert url in message
    assert str(cache_dir() / NAME) in message
    assert f'wget -c {url} -O {cache_dir() / NAME}' in message
    assert "checkpoint='/path/to/" in message
    assert cache_files() == []  # neither the final name nor a .part


def test_http_404_is_not_retried(server):
    with pytest.raises(DownloadError, match='HTTP 404'):
        fast(server.url('good', 'missing-0123abcd.pth'))
    assert server.hits['/good/missing-0123abcd.pth'] == 1


# ------------------------------------------------------- mmengine scheme
def _serve_backbone(server: FileServer) -> tuple:
    torch.manual_seed(3)
    source = VAN_LKA(arch='b0')
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    buffer = io.BytesIO()
    torch.save({'state_dict': source.state_dict()}, buffer)
    data = buffer.getvalue()
    name = f'van-tiny_test_20990101-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    server.files[name] = data
    return source, name


def test_pretrained_url_goes_through_download_code(server):
    for prefix in ('http://', 'https://'):
        loader = CheckpointLoader._get_checkpoint_loader(f'{prefix}x/y.pth')
        assert loader is load_from_url
    source, name = _serve_backbone(server)
    url = server.url('good', name)
    model = VAN_LKA(
        arch='b0', init_cfg=dict(type='Pretrained', checkpoint=url)
    )
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert server.hits[f'/good/{name}'] == 1
    assert cache_files() == [name]  # cached under TORCH_HOME
    # a second model: from the cache
    VAN_LKA(
        arch='b0', init_cfg=dict(type='Pretrained', checkpoint=url)
    ).init_weights()
    assert server.hits[f'/good/{name}'] == 1


def test_pretrained_url_with_corrupt_file_is_refused(server):
    _, name = _serve_backbone(server)
    model = VAN_LKA(
        arch='b0',
        init_cfg=dict(type='Pretrained', checkpoint=server.url('wrong', name)),
    )
    with pytest.raises(ChecksumError):
        model.init_weights()
    assert cache_files() == []


# ----------------------------------------------------------------- tools
def run_tool(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, 'TORCH_HOME': str(env_home)},
    )


def test_publish_model_strips_and_names_by_hash(tmp_path):
    from publish_model import publish

    state = {'w': torch.arange(4.0)}
    torch.save(
        {
            'meta': {'epoch': 3},
            'state_dict': state,
            'optimizer': {'state': {}},
            'message_hub': {'log_scalars': {}},
            'param_schedulers': [{'last_step': 3}],
        },
        tmp_path / 'epoch_3.pth',
    )
    final = publish(str(tmp_path / 'epoch_3.pth'), str(tmp_path / 'm.pth'))
    sha = hashlib.sha256(final.read_bytes()).hexdigest()
    assert final.name == f'm-{sha[:8]}.pth'
    assert expected_hash(final.name) == sha[:8]
    loaded = torch.load(final)
    assert set(loaded) == {'meta', 'state_dict'}
    assert torch.equal(loaded['state_dict']['w'], state['w'])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ['epoch_3.pth', final.name]
    )


def test_download_tool_by_url_and_by_name(server, tmp_path, torch_home):
    url = server.url('good', NAME)
    tool = REPO / 'tools' / 'misc' / 'download_checkpoint.py'
    proc = run_tool(tool, url, '--no-progress', env_home=torch_home)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path == torch_home / 'hub' / 'checkpoints' / NAME
    assert path.read_bytes() == BODY
    # --dest, then a cached second call
    for _ in range(2):
        proc = run_tool(
            tool, url, '--dest', tmp_path / 'd', env_home=torch_home
        )
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'd' / NAME).read_bytes() == BODY
    assert server.hits[f'/good/{NAME}'] == 2
    # a model without public weights, and an unknown name
    proc = run_tool(tool, 'van_lska_b0_in1k', env_home=torch_home)
    assert proc.returncode == 2 and 'no public weights' in proc.stderr
    proc = run_tool(tool, 'van_lka_b0_in1', env_home=torch_home)
    assert proc.returncode == 2 and 'van_lka_b0_in1k' in proc.stderr


def test_download_tool_resolves_names_to_public_urls():
    from download_checkpoint import resolve

    assert resolve('van_lka_b0_in1k') == (
        'https://download.openmmlab.com/mmclassification/v0/van/'
        'van-tiny_8xb128_in1k_20220501-385941af.pth'
    )
    assert resolve('http://h/x.pth') == 'http://h/x.pth'


def test_mim_download_fetches_the_public_file_and_config(
    tmp_path, monkeypatch
):
    """``mim download van-lska --config van_lka_b0_in1k``: the URL mim
    fetches (the network call is replaced) and the config it dumps."""
    import importlib

    mim_download = importlib.import_module('mim.commands.download')
    fetched = []

    def fake_fetch(url, dest_path, check_certificate=True):
        fetched.append(url)
        Path(dest_path).write_bytes(b'weights')

    monkeypatch.setattr(mim_download, 'download_from_file', fake_fetch)
    files = mim_download.download(
        'van-lska', ['van_lka_b0_in1k'], str(tmp_path)
    )
    url = (
        'https://download.openmmlab.com/mmclassification/v0/van/'
        'van-tiny_8xb128_in1k_20220501-385941af.pth'
    )
    assert fetched == [url]
    assert files == [url.rsplit('/', 1)[1]]
    dumped = (tmp_path / 'van_lka_b0_in1k.py').read_text()
    assert 'VAN_LKA' in dumped and 'ImageClassifier' in dumped
