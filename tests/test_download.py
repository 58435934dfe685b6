# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Checkpoint downloads against a local HTTP server on 127.0.0.1: verified,
atomic, cached, resumed; clean failures for a wrong hash, a truncated body,
a dropped connection and an unreachable host; ``Pretrained`` URLs go
through the same code; ``publish_model`` and ``download_checkpoint``
tools."""

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from projects.van_lska import VAN_LKA
from projects.van_lska.apis.runner import free_port
from projects.van_lska.testing.loopback import HTML_PAGE, LoopbackServer
from projects.van_lska.weights.download import (
    ChecksumError,
    DownloadError,
    NotACheckpointError,
    cache_dir,
    download_checkpoint,
    expected_hash,
    load_from_url,
)

REPO = Path(__file__).resolve().parents[1]
BODY = bytes(range(256)) * 400  # 100 KiB
SHA8 = hashlib.sha256(BODY).hexdigest()[:8]
NAME = f'van-test_in1k_20990101-{SHA8}.pth'


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        srv.files[NAME] = BODY
        yield srv


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
    port = free_port()  # a port nobody listens on
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
def _serve_backbone(server: LoopbackServer) -> tuple:
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
    from projects.van_lska.apis.model_zoo import publish

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
    from projects.van_lska.apis.model_zoo import resolve

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


# ------------------------------------------- names that cannot vouch (13.5)
def _checkpoint_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _backbone_bytes(arch: str, seed: int = 3) -> tuple:
    """(model, bytes of {'state_dict': its weights}) of a VAN_LKA ``arch``."""
    torch.manual_seed(seed)
    model = VAN_LKA(arch=arch)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model, _checkpoint_bytes({'state_dict': model.state_dict()})


#: official VAN file name (no hash): the arch in it is checked (b0 = tiny).
OFFICIAL = 'van_tiny_754.pth.tar'


@pytest.fixture
def official(server) -> VAN_LKA:
    model, data = _backbone_bytes('b0')
    server.files[OFFICIAL] = data
    return model


def test_checkpoint_without_hash_is_checked_by_content(
    server, official, capsys
):
    path = fast(server.url('good', OFFICIAL))
    assert path == cache_dir() / OFFICIAL
    assert cache_files() == [OFFICIAL]
    err = capsys.readouterr().err
    assert 'no sha256 prefix' in err
    assert 'checked by content instead' in err
    assert 'VAN-B0 backbone (depths 3-3-5-2, widths 32-64-160-256)' in err


@pytest.mark.parametrize(
    'body, says',
    [
        (HTML_PAGE, 'is an HTML/XML page (157 bytes)'),
        (b'', 'is empty (0 bytes)'),
        (BODY, 'is not a PyTorch checkpoint (102400 bytes'),
        (b'PK\x03\x04' + BODY[:200], 'is truncated (204 bytes'),
        (_checkpoint_bytes([torch.ones(2)]), 'holds a list, not a dict'),
        (_checkpoint_bytes({'epoch': 3}), 'holds no tensor'),
    ],
    ids=['html', 'empty', 'random', 'truncated-zip', 'list', 'no-tensor'],
)
def test_non_checkpoint_without_hash_is_never_cached(server, body, says):
    server.files['plain.pth'] = body
    url = server.url('good', 'plain.pth')
    with pytest.raises(NotACheckpointError) as info:
        fast(url)
    message = str(info.value)
    assert message.startswith(url)
    assert says in message
    assert f'nothing is stored under {cache_dir() / "plain.pth"}' in message
    assert f'wget -c {url}' in message
    assert cache_files() == []  # neither the final name nor a .part


def test_html_error_page_instead_of_the_file_is_never_cached(server, official):
    """A proxy / portal answering 200 with an HTML page: refused, and the
    next call downloads the real file."""
    with pytest.raises(NotACheckpointError, match='an HTML/XML page'):
        fast(server.url('html', OFFICIAL))
    assert cache_files() == []
    # the same file name from a server that answers properly
    assert fast(server.url('good', OFFICIAL)).is_file()
    assert cache_files() == [OFFICIAL]


def test_other_arch_than_the_name_states_is_refused(server):
    _, data = _backbone_bytes('b1')
    server.files[OFFICIAL] = data
    with pytest.raises(NotACheckpointError) as info:
        fast(server.url('good', OFFICIAL))
    assert 'its name says VAN-B0 (depths 3-3-5-2, widths 32-64-160-256)' in (
        str(info.value)
    )
    assert 'its backbone has depths 2-2-4-2, widths 64-128-320-512' in str(
        info.value
    )
    assert cache_files() == []


# ------------------------------------ cached files that do not load (13.5)
def _place_in_cache(name: str, data: bytes) -> Path:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


@pytest.mark.parametrize(
    'cached, says',
    [(HTML_PAGE, 'is an HTML/XML page'), (b'', 'is empty (0 bytes)')],
    ids=['html', 'empty'],
)
def test_cached_file_that_does_not_load_is_fetched_again(
    server, official, capsys, cached, says
):
    """An unverified copy in the cache (written by an older version or by
    hand) that does not load: named with its URL, moved aside, downloaded
    again once; the Pretrained init_cfg then loads the right weights."""
    bad = _place_in_cache(OFFICIAL, cached)
    url = server.url('good', OFFICIAL)
    model = VAN_LKA(
        arch='b0', init_cfg=dict(type='Pretrained', checkpoint=url)
    )
    model.init_weights()
    for key, value in official.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    err = capsys.readouterr().err
    assert f'checkpoint {bad} {says}' in err
    assert f'It is the cached download of {url}' in err
    assert f'moved to {bad}.bad, downloading it again' in err
    assert 'Unsupported operand' not in err
    assert server.hits[f'/good/{OFFICIAL}'] == 1  # one new download
    assert cache_files() == [OFFICIAL, OFFICIAL + '.bad']
    assert (cache_dir() / (OFFICIAL + '.bad')).read_bytes() == cached


def test_cached_truncated_hashed_file_is_fetched_again(server):
    source, name = _serve_backbone(server)
    data = server.files[name]
    _place_in_cache(name, data[: len(data) // 2])  # an interrupted copy
    checkpoint = load_from_url(server.url('good', name))
    for key, value in source.state_dict().items():
        assert torch.equal(checkpoint['state_dict'][key], value), key
    assert (cache_dir() / name).read_bytes() == data
    assert server.hits[f'/good/{name}'] == 1


def test_cached_file_still_bad_after_one_fetch_gives_up(server):
    """Only one new download: a server that keeps sending wrong bytes ends
    in an error naming the URL, with nothing under the final name."""
    _, name = _serve_backbone(server)
    _place_in_cache(name, HTML_PAGE)
    url = server.url('wrong', name)
    with pytest.raises(ChecksumError) as info:
        load_from_url(url)
    assert str(info.value).startswith(url)
    assert server.hits[f'/wrong/{name}'] == 1
    assert cache_files() == [name + '.bad']


def test_download_tool_repairs_a_bad_file_in_dest(
    server, tmp_path, torch_home
):
    """``download_checkpoint.py URL --dest DIR`` checks a file already in
    DIR (e.g. one ``mim download`` left half-written) and replaces it."""
    _, name = _serve_backbone(server)
    data = server.files[name]
    dest = tmp_path / 'd'
    dest.mkdir()
    (dest / name).write_bytes(data[:1000])
    tool = REPO / 'tools' / 'misc' / 'download_checkpoint.py'
    url = server.url('good', name)
    proc = run_tool(tool, url, '--dest', dest, env_home=torch_home)
    assert proc.returncode == 0, proc.stderr
    assert (dest / name).read_bytes() == data
    assert (dest / (name + '.bad')).stat().st_size == 1000
    assert f'{dest / name} (the download of {url}) is bad: {url}: sha256' in (
        proc.stderr
    )
    assert f'It was moved to {dest / name}.bad; downloading it again' in (
        proc.stderr
    )
    # a good file is checked and kept: no new request
    proc = run_tool(tool, url, '--dest', dest, env_home=torch_home)
    assert proc.returncode == 0, proc.stderr
    assert server.hits[f'/good/{name}'] == 1


# --------------------------- B3/B4 UperNet: one hash suffix, two files (18)
#: The two public names that carry the same suffix (facts section 9).
_VAN3RD = 'mmsegmentation/v0.5/van_3rdparty/'
B3_NAME = (
    'van-b3-in1kpre_upernet_3rdparty_512x512-ade20k_20230522-653bd6b7.pth'
)
B4_NAME = (
    'van-b4-in1kpre_upernet_3rdparty_512x512-ade20k_20230522-653bd6b7.pth'
)


@pytest.fixture(scope='module')
def upernet_bytes(tmp_path_factory) -> dict:
    """{'b3': bytes, 'b4': bytes}: mmseg projects/van UperNet checkpoints of
    the real B3/B4 shapes (compact values: a few hundred kB each)."""
    from projects.van_lska.testing.mmseg_van import public_checkpoint

    folder = tmp_path_factory.mktemp('upernet')
    return {
        arch: public_checkpoint(folder, 'upernet', arch, compact=True)[
            0
        ].read_bytes()
        for arch in ('b3', 'b4')
    }


def test_shared_suffix_names_are_the_b3_and_b4_upernet_files():
    from projects.van_lska.weights import download

    assert download.SHARED_SUFFIX_NAMES == {B3_NAME, B4_NAME}
    assert expected_hash(B3_NAME) == expected_hash(B4_NAME) == '653bd6b7'


@pytest.mark.parametrize('arch', ['b3', 'b4'])
def test_shared_suffix_file_of_the_right_arch_is_accepted(
    server, upernet_bytes, capsys, arch
):
    name = B3_NAME if arch == 'b3' else B4_NAME
    other = B4_NAME if arch == 'b3' else B3_NAME
    server.files[_VAN3RD + name] = upernet_bytes[arch]
    path = fast(server.url('good', _VAN3RD + name))
    assert path.read_bytes() == upernet_bytes[arch]
    err = capsys.readouterr().err
    assert f"the '653bd6b7' in the name is also the suffix of {other}" in err
    assert 'so it cannot identify the content' in err
    depths = '3-5-27-3' if arch == 'b3' else '3-6-40-3'
    assert (
        f'VAN-{arch.upper()} backbone (depths {depths}, widths '
        '64-128-320-512)' in err
    )


def test_b3_file_under_the_b4_name_is_refused(server, upernet_bytes):
    server.files[_VAN3RD + B4_NAME] = upernet_bytes['b3']
    url = server.url('good', _VAN3RD + B4_NAME)
    with pytest.raises(NotACheckpointError) as info:
        fast(url)
    message = str(info.value)
    assert message.startswith(url)
    assert 'its name says VAN-B4 (depths 3-6-40-3' in message
    assert 'its backbone has depths 3-5-27-3' in message
    assert cache_files() == []


def test_html_page_under_a_shared_suffix_name_is_refused(
    server, upernet_bytes
):
    server.files[_VAN3RD + B4_NAME] = upernet_bytes['b4']
    with pytest.raises(NotACheckpointError, match='an HTML/XML page'):
        fast(server.url('html', _VAN3RD + B4_NAME))
    assert cache_files() == []


def test_a_matching_shared_suffix_does_not_let_the_other_file_pass(
    server, upernet_bytes, monkeypatch, tmp_path
):
    """The trap itself, with a suffix that does match: the B3 file's own
    sha256 prefix on both names. As plain hash names, the B3 file served
    under the B4 name passes; declared as shared, it is refused."""
    from projects.van_lska.weights import download

    data = upernet_bytes['b3']
    sha8 = hashlib.sha256(data).hexdigest()[:8]
    b3 = B3_NAME.replace('653bd6b7', sha8)
    b4 = B4_NAME.replace('653bd6b7', sha8)
    server.files[b3] = server.files[b4] = data
    # without the rule: the wrong file passes by its (matching) suffix
    assert fast(server.url('good', b4), dest_dir=tmp_path / 'plain').is_file()
    monkeypatch.setattr(download, 'SHARED_SUFFIX_NAMES', frozenset({b3, b4}))
    with pytest.raises(NotACheckpointError, match='its name says VAN-B4'):
        fast(server.url('good', b4))
    assert fast(server.url('good', b3)).read_bytes() == data
    assert cache_files() == [b3]


# ------------------- model-zoo names are checked when loaded, too (18)
#: fpn_van_lka_b0's published file (model-index.yml).
FPN_B0 = 'van-b0-in1kpre_fpn_3rdparty_512x512-ade20k_20230522-75a76298.pth'


def _zoo_named(folder: Path, data: bytes, sha8: str = '') -> Path:
    """``data`` saved under fpn_van_lka_b0's published name, with the
    suffix ``sha8`` (default: the published one)."""
    name = FPN_B0.replace('75a76298', sha8) if sha8 else FPN_B0
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def _tiny_checkpoint(model: torch.nn.Module) -> bytes:
    return _checkpoint_bytes({'meta': {}, 'state_dict': model.state_dict()})


def test_model_zoo_files_are_the_weights_of_model_index():
    from projects.van_lska.apis.metafiles import load_models
    from projects.van_lska.weights.download import model_zoo_files

    table = model_zoo_files()
    weights = {
        name: entry['Weights']
        for name, entry in load_models().items()
        if entry.get('Weights')
    }
    assert len(table) == len(weights) == 14  # 4 ImageNet + 10 ADE20K
    assert {z.model: z.url for z in table.values()} == weights
    assert all(z.url.endswith('/' + n) for n, z in table.items())
    assert table[FPN_B0].model == 'fpn_van_lka_b0'


def test_model_zoo_file_names():
    from projects.van_lska.weights.download import model_zoo_file

    assert model_zoo_file(FPN_B0).model == 'fpn_van_lka_b0'
    # the published name with another hash: the same zoo file
    other = FPN_B0.replace('75a76298', '0123abcd')
    assert model_zoo_file('/x/' + other).model == 'fpn_van_lka_b0'
    assert model_zoo_file(B3_NAME).model == 'upernet_van_lka_b3'
    assert model_zoo_file(B4_NAME).model == 'upernet_van_lka_b4'
    for name in (
        FPN_B0.replace('-75a76298', ''),  # no hash suffix
        FPN_B0.replace('van-b0', 'van-b9'),
        NAME,
        'epoch_12.pth',
    ):
        assert model_zoo_file(name) is None, name


def test_zoo_named_file_is_checked_by_every_loader(tmp_path):
    """A file named after a model-zoo file whose bytes do not match the
    name (what ``mim download`` may leave) is refused by the coverage check
    and by mmengine's loader (``load_from``, ``Pretrained``, inferencers);
    the same bytes under another name load as before."""
    from mmengine.runner.checkpoint import load_checkpoint

    from projects.van_lska.weights.coverage import (
        CheckpointError,
        check_covers,
        check_model_zoo_file,
    )

    model = torch.nn.Linear(3, 2)
    data = _tiny_checkpoint(model)
    sha = hashlib.sha256(data).hexdigest()
    bad = _zoo_named(tmp_path / 'bad', data)
    for refuse in (
        lambda: check_model_zoo_file(bad),
        lambda: check_covers(model, str(bad)),
        lambda: load_checkpoint(model, str(bad), map_location='cpu'),
    ):
        with pytest.raises(CheckpointError) as info:
            refuse()
        message = str(info.value)
        assert message.startswith(
            f'checkpoint {bad} is not the model-zoo file it is named after '
            "(fpn_van_lka_b0's weights): "
            f"sha256 {sha[:8]}... does not match the '75a76298' in its name"
        ), message
        assert (
            'mim download checks no hash; fetch it again with: python '
            'tools/misc/download_checkpoint.py fpn_van_lka_b0 --dest '
            f'{bad.parent.resolve()}\n'
        ) in message
    # the same bytes under their own hash, or under another name: loaded
    good = _zoo_named(tmp_path / 'good', data, sha[:8])
    assert check_model_zoo_file(good).startswith(f'sha256 {sha[:16]}')
    assert check_covers(model, str(good)).complete
    other = tmp_path / 'epoch_1.pth'
    other.write_bytes(data)
    assert check_model_zoo_file(other) is None
    load_checkpoint(model, str(other), map_location='cpu', strict=True)


def test_zoo_named_file_is_checked_again_after_a_change(tmp_path):
    """The result of a check is kept only while the file stays the same."""
    from projects.van_lska.weights.coverage import (
        CheckpointError,
        check_model_zoo_file,
    )

    data = _tiny_checkpoint(torch.nn.Linear(3, 2))
    path = _zoo_named(tmp_path, data, hashlib.sha256(data).hexdigest()[:8])
    assert check_model_zoo_file(path)
    path.write_bytes(data[::-1])  # same size, another time stamp
    os.utime(path, ns=(1, 1))
    with pytest.raises(CheckpointError, match='does not match'):
        check_model_zoo_file(path)


def test_zoo_check_without_a_model_index(tmp_path):
    from projects.van_lska.weights.coverage import (
        CheckpointError,
        check_model_zoo_file,
    )

    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'x')
    missing = tmp_path / 'model-index.yml'
    with pytest.raises(CheckpointError) as info:
        check_model_zoo_file(path, missing)
    assert str(info.value).startswith(
        f'cannot tell whether checkpoint {path} is a model-zoo file: '
    )
    assert str(missing) in str(info.value) and 'reinstall' in str(info.value)


def test_shared_suffix_name_is_checked_by_content_when_loaded(
    tmp_path, upernet_bytes
):
    from projects.van_lska.weights.coverage import (
        CheckpointError,
        check_model_zoo_file,
    )

    right = tmp_path / 'right' / B4_NAME
    wrong = tmp_path / 'wrong' / B4_NAME
    for path, arch in ((right, 'b4'), (wrong, 'b3')):
        path.parent.mkdir()
        path.write_bytes(upernet_bytes[arch])
    assert 'VAN-B4 backbone (depths 3-6-40-3' in check_model_zoo_file(right)
    with pytest.raises(CheckpointError) as info:
        check_model_zoo_file(wrong)
    message = str(info.value)
    assert "(upernet_van_lka_b4's weights): its name says VAN-B4" in message
    assert 'its backbone has depths 3-5-27-3' in message
    assert 'download_checkpoint.py upernet_van_lka_b4 --dest' in message


def _runner(model, load_from=None, resume=False, custom_hooks=()):
    """What :class:`CheckpointCoverageHook` reads of an mmengine Runner."""
    from types import SimpleNamespace

    return SimpleNamespace(
        model=model,
        _load_from=load_from,
        _resume=resume,
        _train_loop=None,
        _test_loop=None,
        cfg={'custom_hooks': list(custom_hooks)},
    )


def test_coverage_hook_checks_the_runners_checkpoint(tmp_path, capsys):
    """The config bases' entry (no ``checkpoint``) checks the runner's
    ``load_from`` (set by mmseg's/mmdet's own test.py and ``mim test``);
    without one it does nothing."""
    from mmengine.logging import MMLogger

    from projects.van_lska.weights.coverage import (
        CheckpointCoverageHook,
        CheckpointError,
    )

    MMLogger.get_instance('test_download_hook')
    model = torch.nn.Linear(3, 2)
    data = _tiny_checkpoint(model)
    hook = CheckpointCoverageHook()
    hooks = [{'type': 'X'}, {'type': 'CheckpointCoverageHook'}]
    hook.before_run(_runner(model))  # nothing to load: nothing checked
    hook.before_run(_runner(model, resume=True))  # auto-resume: the same
    bad = _zoo_named(tmp_path / 'bad', data)
    with pytest.raises(CheckpointError, match='mim download checks no hash'):
        hook.before_run(_runner(model, str(bad), custom_hooks=hooks))
    # a file that covers only part of the model: the option names the entry
    partial = tmp_path / 'partial.pth'
    partial.write_bytes(
        _checkpoint_bytes({'state_dict': {'weight': model.weight}})
    )
    with pytest.raises(CheckpointError) as info:
        hook.before_run(_runner(model, str(partial), custom_hooks=hooks))
    assert 'pass --cfg-options custom_hooks.1.allow_partial=True' in str(
        info.value
    )
    good = _zoo_named(tmp_path, data, hashlib.sha256(data).hexdigest()[:8])
    hook.before_run(_runner(model, str(good), custom_hooks=hooks))
    out = capsys.readouterr().out
    assert f'checkpoint {good} covers the model: 2 tensors loaded' in out
    assert 'missing: nothing' in out


def test_add_coverage_hook_replaces_the_config_entry():
    from mmengine.config import Config

    from projects.van_lska.weights.coverage import add_coverage_hook

    ours = {
        'type': 'CheckpointCoverageHook',
        'checkpoint': 'a.pth',
        'allow_partial': True,
        'role': 'test the model',
        'flag': '--allow-partial',
    }
    cfg = Config(
        dict(
            load_from='a.pth',
            custom_hooks=[
                dict(type='CheckpointCoverageHook'),
                dict(type='X'),
            ],
        )
    )
    add_coverage_hook(cfg, True, 'test the model')
    assert cfg.custom_hooks == [ours, {'type': 'X'}]
    add_coverage_hook(cfg, True, 'test the model')  # again: still one
    assert cfg.custom_hooks == [ours, {'type': 'X'}]
    cfg = Config(dict(load_from='a.pth'))
    add_coverage_hook(cfg, True, 'test the model')
    assert cfg.custom_hooks == [ours]


def test_url_load_checks_a_cached_zoo_named_file(server, torch_home):
    """``load_from=URL`` of a model-zoo name: a file another tool left in
    the cache under that name is checked, moved aside and fetched again."""
    data = _tiny_checkpoint(torch.nn.Linear(3, 2))
    name = FPN_B0.replace('75a76298', hashlib.sha256(data).hexdigest()[:8])
    server.files[name] = data
    cached = _zoo_named(cache_dir(), data[::-1], name[-12:-4])
    checkpoint = load_from_url(server.url('good', name))
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert cached.read_bytes() == data
    assert (cached.parent / (name + '.bad')).read_bytes() == data[::-1]
    assert server.hits[f'/good/{name}'] == 1
