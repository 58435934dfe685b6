# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Model zoo: metafiles, ``mim search``, and a published checkpoint that
goes through download -> ``tools/test.py``.

* every config under ``configs/`` (``_base_`` excluded) has exactly one
  metafile entry, every entry's config exists, names are unique;
* every Collection links to an existing README section;
* ``Weights`` only for the public files of facts sections 6 and 9 (the
  ten ADE20K segmentors one by one in ``test_model_zoo_ade20k.py``);
* the metafile's Parameters/FLOPs are get_flops's numbers (checked on the
  cheapest config);
* ``mim search van-lska`` (the installed package) lists every model;
* a classifier checkpoint made here goes through ``publish_model.py``, is
  served by a local HTTP server, fetched by ``download_checkpoint.py`` and
  evaluated by ``tools/test.py`` on a tiny ImageNet-format folder; the
  accuracy printed is the one the checkpoint's weights dictate.
"""

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import torch
import yaml

from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.metafiles import github_anchor
from projects.van_lska.testing.tiny_data import make_tiny_imagenet

CONFIGS = REPO / 'configs'
INDEX = REPO / 'model-index.yml'
PACKAGE = 'van-lska'

#: The only public files (facts section 6) a metafile may name as Weights.
PUBLIC_WEIGHTS = {
    'https://download.openmmlab.com/mmclassification/v0/van/'
    f'van-{size}_8xb128_in1k_20220501-{digest}.pth'
    for size, digest in [
        ('tiny', '385941af'),
        ('small', '17bc91aa'),
        ('base', '6a4cc31b'),
        ('large', 'f212ba21'),
    ]
} | {
    'https://download.openmmlab.com/mmsegmentation/v0.5/van_3rdparty/'
    f'van-b{i}_3rdparty_20230522-{digest}.pth'
    for i, digest in enumerate(
        ['956f5e0d', '3adb117f', '636fac93', 'a184e051']
    )
}


#: The ten ADE20K segmentors of facts section 9 (mmseg projects/van).
ADE20K = re.compile(
    r'^https://download\.openmmlab\.com/mmsegmentation/v0\.5/van_3rdparty/'
    r'van-b[0-6]-in(1|22)kpre_(fpn|upernet)_3rdparty_512x512-ade20k_'
    r'20230522-[0-9a-f]{8}\.pth$'
)


def load_entries(index: Path = INDEX) -> List[Dict]:
    """Every model entry reachable from ``index`` (duplicates kept)."""
    data = yaml.safe_load(index.read_text()) or {}
    models = list(data.get('Models') or [])
    for sub in data.get('Import') or []:
        models += load_entries(index.parent / sub)
    return models


def config_files() -> List[str]:
    return sorted(
        p.relative_to(REPO).as_posix()
        for p in CONFIGS.rglob('*.py')
        if '_base_' not in p.relative_to(CONFIGS).parts
    )


def test_every_config_has_exactly_one_entry():
    entries = load_entries()
    configs = [e['Config'] for e in entries]
    names = [e['Name'] for e in entries]
    assert len(names) == len(set(names)), 'duplicate model names'
    for config in configs:
        assert (REPO / config).is_file(), f'{config} does not exist'
    expected = config_files()
    assert len(expected) >= 58
    assert sorted(configs) == expected


def test_metadata_and_weights():
    collections = {}
    for meta in (REPO / 'configs' / 'metafiles').glob('*.yml'):
        for c in yaml.safe_load(meta.read_text()).get('Collections', []):
            collections[c['Name']] = c
    with_weights = []
    for entry in load_entries():
        meta = entry['Metadata']
        assert meta['Parameters'] > 0 and meta['FLOPs'] > 0, entry['Name']
        assert meta['Batch Size'] > 0
        assert ('Epochs' in meta) != ('Iterations' in meta)
        coll = collections[entry['In Collection']]
        assert coll['Paper']['URL'].startswith('https://arxiv.org/abs/')
        assert coll['Code']['URL'].startswith('https://github.com/')
        if 'Weights' in entry:
            assert entry['Weights'] in PUBLIC_WEIGHTS or ADE20K.match(
                entry['Weights']
            ), entry['Weights']
            with_weights.append(entry['Name'])
        if 'Results' in entry:  # only with the file the numbers belong to
            assert 'Weights' in entry, entry['Name']
    classifiers = [n for n in with_weights if n.startswith('van_')]
    assert sorted(classifiers) == [f'van_lka_b{i}_in1k' for i in range(4)]
    assert len(with_weights) == 4 + 10


def test_collections_link_to_readme_sections():
    """``README: FILE#anchor`` of every Collection: the file exists and has
    a heading with that GitHub anchor."""
    links = []
    for meta in (REPO / 'configs' / 'metafiles').glob('*.yml'):
        for c in yaml.safe_load(meta.read_text()).get('Collections', []):
            links.append(c['README'])
    assert len(links) >= 6
    for link in links:
        path, _, anchor = link.partition('#')
        readme = REPO / path
        assert readme.is_file(), link
        headings = [
            line.lstrip('#')
            for line in readme.read_text().splitlines()
            if re.match(r'#{1,6} ', line)
        ]
        assert anchor in {github_anchor(h) for h in headings}, link


def test_github_anchor():
    assert github_anchor(' Model zoo: metafiles, `mim search`, downloads') == (
        'model-zoo-metafiles-mim-search-downloads'
    )
    assert github_anchor('Speed, memory and the fast inference path') == (
        'speed-memory-and-the-fast-inference-path'
    )


def test_metafile_numbers_are_get_flops_numbers():
    from mmengine.config import Config

    from projects.van_lska.analysis.complexity import analyse

    result = analyse(Config.fromfile(str(CONFIGS / 'van_lka_b0_in1k.py')))
    (entry,) = [e for e in load_entries() if e['Name'] == 'van_lka_b0_in1k']
    assert entry['Metadata']['Parameters'] == result['params']
    assert entry['Metadata']['FLOPs'] == result['flops']
    # the paper's VAN-B0: 4.1M parameters, 0.9 GFLOPs at 224x224
    assert round(result['params'] / 1e6, 1) == 4.1
    assert round(result['flops'] / 1e9, 1) == 0.9


def test_mim_search_lists_every_model():
    from mim.utils import get_installed_path

    mim_dir = Path(get_installed_path(PACKAGE)) / '.mim'
    assert (mim_dir / 'model-index.yml').resolve() == INDEX.resolve()
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'search', PACKAGE],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, 'PAGER': 'cat', 'COLUMNS': '200'},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = set(re.findall(r'config id: (\S+)', proc.stdout))
    assert listed == {e['Name'] for e in load_entries()}


def test_mim_download_resolves_weights_and_config(tmp_path):
    """``mim download`` finds the model's file name and dumps its config
    from the installed package (the file is put in place beforehand, so no
    network is needed: mim skips files that exist)."""
    (entry,) = [e for e in load_entries() if e['Name'] == 'van_lka_b0_in1k']
    weights = tmp_path / entry['Weights'].rsplit('/', 1)[-1]
    weights.write_bytes(b'placeholder')
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'download', PACKAGE]
        + ['--config', 'van_lka_b0_in1k', '--dest', str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert f'{weights.name} exists' in proc.stdout
    dumped = (tmp_path / 'van_lka_b0_in1k.py').read_text()
    assert 'VAN_LKA' in dumped


# --------------------------------------------------------------------------
# publish -> serve -> download -> tools/test.py
# --------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple]:
    """(folder, base URL) of an HTTP server on 127.0.0.1 (random port)."""
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def run_ok(run_tool, tmp_path):
    """``run_ok(cmd)``: ``run_tool`` with a private ``TORCH_HOME``; asserts
    success and returns the output."""

    def run(cmd: List) -> str:
        proc = run_tool(cmd, env={'TORCH_HOME': str(tmp_path / 'torch')})
        assert proc.returncode == 0, proc.output[-4000:]
        return proc.output

    return run


@pytest.mark.slow
def test_published_checkpoint_downloads_and_evaluates(
    tmp_path, file_server, run_ok
):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import projects.van_lska  # noqa: F401  (registers the backbones)

    config = CONFIGS / 'van_lka_b0_in1k.py'
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    # Weights that decide the answer: class 0 wins for every image.
    with torch.no_grad():
        model.head.fc.weight.zero_()
        model.head.fc.bias.zero_()
        model.head.fc.bias[0] = 10.0
    raw = tmp_path / 'epoch_1.pth'
    torch.save(
        dict(
            meta=dict(epoch=1, note='made by test_model_zoo'),
            state_dict=model.state_dict(),
            optimizer=dict(state={}, param_groups=[dict(lr=1e-3)]),
            message_hub=dict(log_scalars={}),
        ),
        raw,
    )

    www, base_url = file_server
    out = run_ok(
        [
            'tools/model_converters/publish_model.py',
            raw,
            www / 'van_lka_b0_test',
        ]
    )
    (published,) = www.glob('van_lka_b0_test-*.pth')
    assert re.fullmatch(r'van_lka_b0_test-[0-9a-f]{8}\.pth', published.name)
    assert str(published) in out
    stripped = torch.load(published, map_location='cpu', weights_only=False)
    assert set(stripped) == {'meta', 'state_dict'}

    dest = tmp_path / 'downloads'
    out = run_ok(
        [
            'tools/misc/download_checkpoint.py',
            f'{base_url}/{published.name}',
            '--dest',
            dest,
        ]
    )
    local = dest / published.name
    assert local.read_bytes() == published.read_bytes()
    assert str(local) in out

    # 3 images of class 'a' (label 0), 1 of class 'b' (label 1): a model
    # that always answers 0 scores exactly 75% top-1; a random one ~0%.
    data = tmp_path / 'imagenet'
    make_tiny_imagenet(data, {'a': 3, 'b': 1}, splits=('val',))
    out = run_ok(
        [
            'tools/test.py',
            config,
            local,
            '--work-dir',
            tmp_path / 'work',
            '--cfg-options',
            'model.backbone.init_cfg=None',
            f'test_dataloader.dataset.data_root={data}',
            'test_dataloader.dataset.split=val',
            'test_dataloader.dataset.metainfo.classes=[a,b]',
            'test_dataloader.batch_size=2',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            'test_evaluator.topk=[1]',
        ]
    )
    match = re.search(r'accuracy/top1: ([\d.]+)', out)
    assert match, out[-3000:]
    assert float(match.group(1)) == pytest.approx(75.0)
