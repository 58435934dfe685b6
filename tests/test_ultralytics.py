# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""LSKA in Ultralytics YOLO (``projects.van_lska.integrations``), the YOLO
configs, the YOLO-format shapes dataset and the ``--task yolo`` quickstart.

The references are code we did not write: the LSKA authors' formulation
(their kernel table; the dense 2-D kernel the four 1-D convs compose to, and
their module as restated in ``testing/lska_reference.py``), Ultralytics' own
``C2PSA``, parser, dataset checks, trainer and validator, and pycocotools.
Ultralytics runs in subprocesses for what must hold in a fresh interpreter
(the registration, the offline training, which records every socket and
``pip`` call and fails on any).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from projects.van_lska.datasets.synthetic_shapes import generate_split
from projects.van_lska.datasets.yolo_format import (
    generate_yolo_dataset,
    merge_polygons,
    yolo_dataset_exists,
)
from projects.van_lska.integrations.ultralytics_offline import (
    INSTALL_HINT,
    prepare_offline,
)
from projects.van_lska.testing.lska_reference import (
    AUTHOR_LSKA_TABLE,
    ReferenceLSKA,
)
from projects.van_lska.testing.randomize import randomize_

REPO = Path(__file__).resolve().parents[1]
YOLO_CONFIGS = REPO / 'configs' / 'yolo'
C = 6


@pytest.fixture(scope='module')
def ul(tmp_path_factory):
    """The integration module, with Ultralytics imported offline and with a
    private config folder. What importing Ultralytics changes for the whole
    process (environment, numpy/torch print options, OpenCV threads, its
    retrying ``torch.save``) is put back after this module's tests."""
    from torch._tensor_str import PRINT_OPTS

    saved_env, saved_np = dict(os.environ), np.get_printoptions()
    saved_torch = dict(vars(PRINT_OPTS))
    saved_cv2, saved_save = cv2.getNumThreads(), torch.save
    try:
        if sys.modules.get('ultralytics') is None:
            prepare_offline(tmp_path_factory.mktemp('ultralytics_config'))
        import projects.van_lska.integrations.ultralytics as module
    except ImportError as exc:
        pytest.fail(f'{exc}', pytrace=False)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    yield module
    np.set_printoptions(**saved_np)
    vars(PRINT_OPTS).update(saved_torch)
    cv2.setNumThreads(saved_cv2)
    torch.save = saved_save


def subprocess_env() -> dict:
    """The environment of a new user's shell: no pytest marker (Ultralytics
    turns its analytics off under pytest), no Ultralytics variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(('PYTEST_', 'YOLO_', 'ULTRALYTICS_'))
    }
    env['OMP_NUM_THREADS'] = '1'
    return env


def run_python(code: str, *argv, timeout: int = 600):
    """``python -c code argv...`` in the repository, as a new user would."""
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code), *map(str, argv)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_ok(proc) -> None:
    assert proc.returncode == 0, (
        f'exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n'
        f'--- stderr\n{proc.stderr[-6000:]}'
    )


# --------------------------------------------------------------------------
# The LSKA layer against the authors' formulation
# --------------------------------------------------------------------------
def dilate(taps: np.ndarray, d: int) -> np.ndarray:
    out = np.zeros((len(taps) - 1) * d + 1)
    out[::d] = taps
    return out


def authors_dense_kernel(convs, k: int):
    """Compose the authors' four 1-D depthwise convs (``conv0h``, ``conv0v``,
    ``conv_spatial_h``, ``conv_spatial_v``; geometry from their table) into
    one dense ``k x k`` depthwise kernel and bias."""
    (k1, _), (k2, _), d = AUTHOR_LSKA_TABLE[k]
    h1, v1, h2, v2 = (c.weight.detach().double() for c in convs)
    assert h1.shape[-2:] == (1, k1) and v1.shape[-2:] == (k1, 1)
    assert h2.shape[-2:] == (1, k2) and v2.shape[-2:] == (k2, 1)
    dense = np.zeros((h1.shape[0], k, k))
    bias = torch.zeros(h1.shape[0], dtype=torch.float64)
    for conv in convs:  # a bias entering a conv is scaled by its tap sum
        w = conv.weight.detach().double().flatten(1)
        bias = bias * w.sum(1) + conv.bias.detach().double()
    for c in range(h1.shape[0]):
        h = np.convolve(h1[c].flatten().numpy(), dilate(h2[c].flatten(), d))
        v = np.convolve(v1[c].flatten().numpy(), dilate(v2[c].flatten(), d))
        dense[c] = np.outer(v, h)
    return torch.from_numpy(dense)[:, None], bias


@pytest.mark.parametrize('k', sorted(AUTHOR_LSKA_TABLE))
def test_lska_layer_equals_the_authors_lska(ul, k):
    layer = randomize_(ul.LSKA(C, k).double(), seed=k, everything=True)
    (k1, p1), (k2, p2), d = AUTHOR_LSKA_TABLE[k]
    h1, v1, h2, v2 = layer.dw_convs()
    # The authors' convs, one by one.
    assert (h1.kernel_size, h1.padding) == ((1, k1), (0, p1))
    assert (v1.kernel_size, v1.padding) == ((k1, 1), (p1, 0))
    assert (h2.kernel_size, h2.padding) == ((1, k2), (0, p2))
    assert (v2.kernel_size, v2.padding) == ((k2, 1), (p2, 0))
    assert h2.dilation == v2.dilation == (d, d)
    assert all(c.groups == C for c in (h1, v1, h2, v2))

    x = torch.randn(2, C, k + 9, k + 12, dtype=torch.float64)
    with torch.no_grad():
        got = layer(x)
        # Dense composition: one k x k depthwise conv, then 1x1, times x.
        dense, bias = authors_dense_kernel((h1, v1, h2, v2), k)
        attn = F.conv2d(x, dense, bias, padding=k // 2, groups=C)
        dense_out = x * layer.conv1(attn)
        m = k // 2  # interior: no intermediate result read from padding
        torch.testing.assert_close(
            got[..., m:-m, m:-m], dense_out[..., m:-m, m:-m]
        )
        # The authors' module (restated), same weights: equal everywhere.
        ref = ReferenceLSKA(C, k).double()
        pairs = zip(
            (*layer.dw_convs(), layer.conv1),
            (ref.conv0h, ref.conv0v, ref.conv_spatial_h, ref.conv_spatial_v)
            + (ref.conv1,),
        )
        for ours, theirs in pairs:
            theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(got, ref(x))
        # Not NCHW-only: a channels_last input gives the same result.
        cl = layer(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, got)


def test_lska_layer_is_the_backbone_lska(ul):
    from projects.van_lska.models.attention import LSKA as BackboneLSKA
    from projects.van_lska.models.kernels import lska_kernels

    layer = ul.LSKA(C, 29)
    assert isinstance(layer, BackboneLSKA)
    assert layer.kernels == lska_kernels(29)
    trivial = ul.LSKA(C, 13, True)
    assert trivial.kernels == lska_kernels(13, trivial=True)
    assert len(trivial.dw_convs()) == 2
    block = ul.C2PSA_LSKA(64, 64, 2, 35)
    assert [type(b.attn) for b in block.m] == [BackboneLSKA] * 2
    assert block.m[0].attn.kernels == lska_kernels(35)
    with pytest.raises(ValueError, match='LSKA kernel_size must satisfy'):
        ul.LSKA(C, 25)


def test_c2psa_lska_is_ultralytics_c2psa_with_the_authors_lska(ul):
    from ultralytics.nn.modules.block import C2PSA

    ours = randomize_(ul.C2PSA_LSKA(64, 64, n=2, k=11), 3, everything=True)
    ref = C2PSA(64, 64, n=2)
    for block, ours_block in zip(ref.m, ours.m):
        block.attn = ReferenceLSKA(32, 11)
        names = ('conv0h', 'conv0v', 'conv_spatial_h', 'conv_spatial_v')
        for name, conv in zip(names, ours_block.attn.dw_convs()):
            getattr(block.attn, name).load_state_dict(conv.state_dict())
        block.attn.conv1.load_state_dict(ours_block.attn.conv1.state_dict())
        block.ffn.load_state_dict(ours_block.ffn.state_dict())
    ref.cv1.load_state_dict(ours.cv1.state_dict())
    ref.cv2.load_state_dict(ours.cv2.state_dict())
    x = torch.randn(2, 64, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x))


# --------------------------------------------------------------------------
# Model YAMLs through Ultralytics' parser
# --------------------------------------------------------------------------
def source_dict():
    from projects.van_lska.integrations.yolo_configs import source_path

    with open(source_path()) as f:
        return yaml.safe_load(f)


def build(d, scale='n', nc=4):
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(dict(d, scale=scale), nc=nc, verbose=False)


def shapes(model, drop=None, shift_after=None):
    out = {}
    for key, value in model.state_dict().items():
        index = int(key.split('.')[1])
        if index == drop:
            continue
        if shift_after is not None and index > shift_after:
            key = key.replace(f'model.{index}.', f'model.{index - 1}.', 1)
        out[key] = tuple(value.shape)
    return out


@pytest.mark.parametrize('scale', ['n', 's', 'm'])
def test_channels_and_repeats_follow_ultralytics(ul, scale):
    from projects.van_lska.integrations import yolo_configs as gen

    src = source_dict()
    plain = build(src, scale)
    lska = build(gen._c2psa_lska(source_dict()), scale)
    sppf = build(gen._sppf_lska(source_dict()), scale)
    ref, ours = plain.model[10], lska.model[10]
    assert type(ours) is ul.C2PSA_LSKA
    assert (ours.c, len(ours.m)) == (ref.c, len(ref.m))
    # Every other tensor has the shape Ultralytics gives the baseline.
    p = {k: v for k, v in shapes(plain).items() if '.attn.' not in k}
    q = {k: v for k, v in shapes(lska).items() if '.attn.' not in k}
    assert p == q
    layer = sppf.model[10]
    assert type(layer) is ul.LSKA
    assert layer.conv1.in_channels == plain.model[9].cv2.conv.out_channels
    assert shapes(sppf, drop=10, shift_after=10) == shapes(plain)
    assert sppf.model[-1].f == [17, 20, 23]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for model in (lska, sppf):
            preds = model.eval()(x)[0]
            assert preds.shape == (1, 4 + 4, 8 * 8 + 4 * 4 + 2 * 2)


def test_other_kernel_sizes_and_trivial_from_yaml(ul):
    d = source_dict()
    backbone = d['backbone']
    sppf, c2psa = backbone[9], backbone[10]
    assert (sppf[2], c2psa[2]) == ('SPPF', 'C2PSA')
    d['backbone'] = backbone[:9] + [
        [6, 1, 'LSKA', [15, 'True']],  # 9: a side branch on layer 6
        [8, 1, 'SPPF', sppf[3]],  # 10: SPPF still reads layer 8
        [-1, 2, 'LSKA', [29]],  # 11
        [-1, 1, 'C2PSA_LSKA', [1024, 9, True, 0.25]],  # 12
    ]
    for row in d['head']:  # old layers 9, 10, ... are now 10, 12, ...
        f = row[0]
        row[0] = (
            [x + 2 if x > 8 else x for x in f] if isinstance(f, list) else f
        )
    model = build(d)
    side, lska, block = model.model[9], model.model[11], model.model[12]
    assert side.kernels.trivial and side.kernels.kernel_size == 15
    assert side.conv1.in_channels == model.model[6].cv2.conv.out_channels
    assert type(lska) is ul.LSKA  # depth 0.5 scales 2 repeats to 1
    assert lska.kernels.kernel_size == 29 and not lska.kernels.trivial
    assert block.c == int(256 * 0.25) and block.m[0].attn.kernels.trivial
    assert block.m[0].attn.kernels.kernel_size == 9
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize(
    'row, message',
    [
        ([-1, 1, 'LSKA', [25]], 'LSKA kernel_size must satisfy'),
        ([-1, 1, 'LSKA', [23, 1, 2]], 'takes \\[k\\] or \\[k, trivial\\]'),
        ([-1, 1, 'LSKA', [23, 'yes']], 'trivial must be true or false'),
        ([[-1, 6], 1, 'LSKA', [23]], '`from` must be a single layer index'),
        ([-1, 2, 'C2PSA_LSKA', [1024, 8]], 'must satisfy'),
        ([-1, 2, 'C2PSA_LSKA', [1024, 23, False, 0]], 'e must be'),
    ],
)
def test_bad_rows_name_the_layer(ul, row, message):
    d = source_dict()
    d['backbone'][10] = row
    d['yaml_file'] = 'my-model.yaml'
    with pytest.raises(
        ValueError, match=f'my-model.yaml: layer 10 .*{message}'
    ):
        build(d)


def test_yolo_configs_are_generated_from_the_installed_ultralytics(ul):
    from projects.van_lska.integrations.yolo_configs import (
        SCALES,
        generate,
        source_path,
    )

    assert generate(str(YOLO_CONFIGS), check=True) == []
    # The baselines have the parameter counts Ultralytics states for them.
    stated = {}
    for line in source_path().read_text().splitlines():
        key = line.strip().split(':')[0]
        if key in SCALES and 'parameters' in line:
            stated[key] = int(line.split(' layers, ')[1].split()[0])
    from ultralytics import YOLO

    for scale in SCALES:
        model = YOLO(str(YOLO_CONFIGS / f'yolo11{scale}.yaml'))
        assert (
            sum(p.numel() for p in model.model.parameters()) == (stated[scale])
        )
        for variant in ('lska', 'sppf-lska'):
            built = YOLO(str(YOLO_CONFIGS / f'yolo11{scale}-{variant}.yaml'))
            assert len(ul.lska_layers(built.model)) >= 1


def test_registration_in_a_fresh_interpreter(tmp_path):
    code = """
        import sys
        from projects.van_lska.integrations.ultralytics_offline import (
            prepare_offline)
        prepare_offline(sys.argv[1])
        from ultralytics import YOLO
        try:
            YOLO('configs/yolo/yolo11n-lska.yaml')
        except KeyError as exc:
            print('unregistered:', exc)
        else:
            raise SystemExit('built without the registration')
        import projects.van_lska.integrations.ultralytics  # registers
        from projects.van_lska.models.attention import LSKA
        for name in ('yolo11n-lska', 'yolo11n-sppf-lska', 'yolo11s-lska'):
            model = YOLO(f'configs/yolo/{name}.yaml')
            layers = [m for m in model.model.modules() if isinstance(m, LSKA)]
            print(name, len(layers), model.task)
    """
    proc = run_python(code, tmp_path / 'cfg', timeout=300)
    assert_ok(proc)
    assert "unregistered: 'C2PSA_LSKA'" in proc.stdout
    assert 'yolo11n-lska 1 detect' in proc.stdout
    assert 'yolo11n-sppf-lska 1 detect' in proc.stdout


def test_missing_ultralytics_names_the_install_option(tmp_path):
    code = """
        import sys
        sys.modules['ultralytics'] = None  # as if not installed
        try:
            import projects.van_lska.integrations.ultralytics
        except ImportError as exc:
            print('import:', exc)
        import argparse
        from projects.van_lska.apis import quickstart_yolo
        args = argparse.Namespace(
            yolo_models=['yolo11n.yaml'], epochs=1, imgsz=64, batch=2)
        try:
            quickstart_yolo.run(args, sys.argv[1])
        except SystemExit as exc:
            print('quickstart:', exc)
    """
    proc = run_python(code, tmp_path, timeout=120)
    assert_ok(proc)
    assert f'import: {INSTALL_HINT}' in proc.stdout
    assert f'quickstart: --task yolo: {INSTALL_HINT}' in proc.stdout


# --------------------------------------------------------------------------
# The YOLO-format dataset
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def yolo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    meta = generate_yolo_dataset(
        str(root / 'yolo'), seed=0, num_train=12, num_val=4, size=(96, 112)
    )
    for split, num in (('train', 12), ('val', 4)):
        generate_split(str(root), split, num, seed=0, cfg=_cfg(96, 112))
    return root, meta


def _cfg(h, w):
    from projects.van_lska.datasets.synthetic_shapes import ShapesConfig

    return ShapesConfig(height=h, width=w)


def test_yolo_dataset_matches_the_coco_version(yolo_data):
    from pycocotools import mask as mask_utils

    root, meta = yolo_data
    assert yolo_dataset_exists(str(root / 'yolo'))
    data = yaml.safe_load(open(meta['data_yaml']['detect']))
    assert data['names'] == {
        0: 'circle',
        1: 'triangle',
        2: 'square',
        3: 'star',
    }
    pieces_seen = 0
    for split in ('train', 'val'):
        coco = json.load(
            open(root / 'coco/annotations' / f'instances_{split}.json')
        )
        for image in coco['images']:
            stem = image['file_name'][:-4]
            w, h = image['width'], image['height']
            jpg = (root / 'coco' / split / image['file_name']).read_bytes()
            for task in ('detect', 'segment'):
                path = root / 'yolo' / task / 'images' / split / f'{stem}.jpg'
                assert path.read_bytes() == jpg  # the same scene
            anns = [
                a for a in coco['annotations'] if a['image_id'] == image['id']
            ]
            det = np.loadtxt(
                root / f'yolo/detect/labels/{split}/{stem}.txt', ndmin=2
            )
            seg = (
                root / f'yolo/segment/labels/{split}/{stem}.txt'
            ).read_text()
            seg = [np.array(line.split(), float) for line in seg.splitlines()]
            assert len(det) == len(seg) == len(anns)
            for ann, box, poly in zip(anns, det, seg):
                x, y, bw, bh = ann['bbox']
                expected = [ann['category_id'] - 1, (x + bw / 2) / w]
                expected += [(y + bh / 2) / h, bw / w, bh / h]
                np.testing.assert_allclose(box, expected, atol=1e-6)
                assert poly[0] == ann['category_id'] - 1
                # Back in pixels at COCO's 2 decimals (normalising lost
                # < 1e-4 px), our one polygon and the COCO pieces have the
                # same vertices and, through one rasteriser (pycocotools),
                # the same mask.
                ours = (poly[1:].reshape(-1, 2) * [w, h]).round(2)
                coco_pts = np.concatenate(
                    [np.reshape(p, (-1, 2)) for p in ann['segmentation']]
                )
                assert {tuple(p) for p in ours} == {tuple(p) for p in coco_pts}
                ours = mask_utils.decode(
                    mask_utils.frPyObjects([ours.reshape(-1).tolist()], h, w)[
                        0
                    ]
                )
                rle = mask_utils.frPyObjects(ann['segmentation'], h, w)
                theirs = mask_utils.decode(mask_utils.merge(rle))
                iou = (ours & theirs).sum() / (ours | theirs).sum()
                assert iou > 0.99, (split, stem, iou)
                pieces_seen += len(ann['segmentation']) > 1
    assert pieces_seen > 0  # an occluded object cut into pieces is covered
    assert meta['objects']['train'] + meta['objects']['val'] == sum(
        len(
            json.load(open(root / 'coco/annotations' / f'instances_{s}.json'))[
                'annotations'
            ]
        )
        for s in ('train', 'val')
    )


def test_yolo_labels_pass_ultralytics_checks(ul, yolo_data):
    from ultralytics.data.utils import verify_image_label

    root, _ = yolo_data
    for stem in ('000000', '000001', '000002'):
        out = {}
        for task in ('detect', 'segment'):
            base = root / 'yolo' / task
            out[task] = verify_image_label(
                (
                    str(base / f'images/train/{stem}.jpg'),
                    str(base / f'labels/train/{stem}.txt'),
                    '',
                    False,
                    4,
                    0,
                    0,
                    False,
                )
            )
        (_, det, shape, det_segments, *_, corrupt, msg) = out['detect']
        (_, box_from_poly, _, segments, *_, corrupt2, msg2) = out['segment']
        assert corrupt == corrupt2 == 0 and msg == msg2 == ''
        assert shape == (96, 112) and not det_segments
        assert len(segments) == len(det) > 0
        # Ultralytics' boxes from our polygons: the same objects; polygon
        # vertices sit on pixel centres, so sizes are one pixel smaller.
        np.testing.assert_array_equal(box_from_poly[:, 0], det[:, 0])
        np.testing.assert_allclose(
            box_from_poly[:, 1:3], det[:, 1:3], atol=0.01
        )
        px = np.array([1 / 112, 1 / 96])
        np.testing.assert_allclose(
            box_from_poly[:, 3:5], det[:, 3:5] - px, atol=0.01
        )


def test_yolo_dataset_is_deterministic_and_not_overwritten(tmp_path):
    a = generate_yolo_dataset(str(tmp_path / 'a'), 1, 3, 2, (64, 64))
    generate_yolo_dataset(str(tmp_path / 'b'), 1, 3, 2, (64, 64))
    for task in ('detect', 'segment'):
        for sub in ('images/train/000002.jpg', 'labels/val/000001.txt'):
            assert (tmp_path / 'a' / task / sub).read_bytes() == (
                tmp_path / 'b' / task / sub
            ).read_bytes()
    with pytest.raises(FileExistsError, match='not empty.*force'):
        generate_yolo_dataset(str(tmp_path / 'a'), 2, 3, 2, (64, 64))
    b = generate_yolo_dataset(
        str(tmp_path / 'a'), 2, 1, 1, (64, 64), force=True
    )
    assert (b['seed'], a['seed']) == (2, 1)
    assert len(os.listdir(tmp_path / 'a/detect/images/train')) == 1
    assert sorted(os.listdir(tmp_path)) == ['a', 'b']  # no temporary left
    with pytest.raises(ValueError, match='num_val must be an int >= 0'):
        generate_yolo_dataset(str(tmp_path / 'c'), 0, 1, -1)


def test_merge_polygons_keeps_area_and_vertices():
    from pycocotools import mask as mask_utils

    square = np.array([[2, 2], [12, 2], [12, 12], [2, 12]], float)
    pieces = [square, square + [20, 3], square * 0.5 + [30, 30]]
    merged = merge_polygons(pieces)
    assert merged.shape == (12 + 2 * 2, 2)  # two bridges, there and back
    assert {tuple(p) for p in merged} == {tuple(p) for p in square} | {
        tuple(p) for p in pieces[1]
    } | {tuple(p) for p in pieces[2]}

    def area(p):  # shoelace: zero-width bridges add nothing
        x, y = p.T
        return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))

    assert area(merged) == pytest.approx(sum(area(p) for p in pieces))
    ours = mask_utils.decode(
        mask_utils.frPyObjects([merged.reshape(-1).tolist()], 50, 50)[0]
    )
    rle = mask_utils.frPyObjects(
        [p.reshape(-1).tolist() for p in pieces], 50, 50
    )
    theirs = mask_utils.decode(mask_utils.merge(rle))
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.97


# --------------------------------------------------------------------------
# Offline training and validation through Ultralytics' API
# --------------------------------------------------------------------------
NETWORK_GUARD = """
import sys
NETWORK = {'socket.connect', 'socket.getaddrinfo', 'socket.gethostbyname',
           'socket.gethostbyname_ex', 'socket.gethostbyaddr',
           'socket.sendto', 'socket.sendmsg', 'urllib.Request',
           'http.client.connect'}
LOG = sys.argv[1]

def guard(event, args):
    pip = event == 'subprocess.Popen' and 'pip' in ' '.join(
        map(str, args[1] or []))
    if event in NETWORK or pip:
        import traceback
        with open(LOG, 'a') as f:
            f.write(f'{event} {args!r}\\n')
            f.write(''.join(traceback.format_stack(limit=8)))
        raise PermissionError(f'network access attempted: {event}')

sys.addaudithook(guard)
"""


def test_network_guard_sees_ultralytics_downloads(tmp_path):
    """The guard below is not blind: Ultralytics' font download (what
    prepare_offline's local font prevents) is caught and logged."""
    log = tmp_path / 'network.log'
    code = NETWORK_GUARD + textwrap.dedent(
        """
        from projects.van_lska.integrations.ultralytics_offline import (
            prepare_offline)
        prepare_offline(sys.argv[2])
        from ultralytics.utils.checks import check_font
        print('font', check_font('Arial.ttf'), check_font('Missing.ttf'))
        """
    )
    proc = run_python(code, log, tmp_path / 'cfg', timeout=120)
    assert_ok(proc)  # Ultralytics swallows the error: only the log tells
    assert f'font {tmp_path / "cfg/Ultralytics/Arial.ttf"} None' in proc.stdout
    assert "socket.getaddrinfo ('github.com'" in log.read_text()


@pytest.mark.slow
def test_quickstart_trains_and_validates_offline(tmp_path):
    log, work = tmp_path / 'network.log', tmp_path / 'work'
    work.mkdir()
    code = NETWORK_GUARD + textwrap.dedent(
        """
        import argparse
        from projects.van_lska.apis import quickstart_yolo
        args = argparse.Namespace(
            data_root=sys.argv[2], seed=0, num_train=8, num_val=4,
            size=[64, 64], yolo_models=list(quickstart_yolo.DEFAULT_MODELS),
            epochs=1, imgsz=64, batch=4)
        quickstart_yolo.run(args, sys.argv[3])
        """
    )
    proc = run_python(code, log, tmp_path / 'data', work, timeout=900)
    assert not log.exists(), log.read_text()
    assert_ok(proc)
    rows = json.loads((work / 'metrics.json').read_text())
    assert [r['model'] for r in rows] == ['yolo11n', 'yolo11n-lska']
    assert [r['lska_layers'] for r in rows] == [0, 1]
    for r in rows:
        assert 2.4e6 < r['params'] < 2.7e6 and r['gflops_640'] > 6
        assert 0 <= r['map50_95'] <= r['map50'] <= 1
    table = (work / 'results.md').read_text()
    assert '| yolo11n-lska |' in table and table.split('\n')[0] in proc.stdout
    best = work / 'yolo11n-lska' / 'weights' / 'best.pt'
    assert best.is_file()
    assert (work / 'ultralytics_config/Ultralytics/settings.json').is_file()

    # A fresh interpreter: unpickling the checkpoint imports (and so
    # registers) our module; Ultralytics validates it; weights_only loading
    # (ULTRALYTICS_SAFE_LOAD) reads it too.
    code = NETWORK_GUARD + textwrap.dedent(
        """
        from projects.van_lska.integrations.ultralytics_offline import (
            OFFLINE_TRAIN_ARGS, prepare_offline)
        prepare_offline(sys.argv[2])
        from ultralytics import YOLO
        model = YOLO(sys.argv[3])
        assert 'projects.van_lska.integrations.ultralytics' in sys.modules
        metrics = model.val(data=sys.argv[4], imgsz=64, batch=4, device='cpu',
                            workers=0, project=sys.argv[2], name='val',
                            **OFFLINE_TRAIN_ARGS)
        print('map50-95', repr(float(metrics.box.map)))
        from ultralytics.nn.tasks import torch_safe_load
        ckpt, _ = torch_safe_load(sys.argv[3], safe_only=True)
        print('safe', type(ckpt['model'].model[10]).__name__)
        """
    )
    data_yaml = tmp_path / 'data/yolo/detect/data.yaml'
    proc = run_python(
        code, log, tmp_path / 'cfg', best, data_yaml, timeout=300
    )
    assert not log.exists(), log.read_text()
    assert_ok(proc)
    assert 'safe C2PSA_LSKA' in proc.stdout
    # The same weights and data give the quickstart's own val numbers.
    got = float(proc.stdout.split('map50-95 ')[1].split()[0])
    assert got == pytest.approx(rows[1]['map50_95'], abs=1e-9)
