# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""What a checkpoint file is, and whether it covers a model.

mmengine loads checkpoints non-strictly: a classification checkpoint, a bare
backbone file or a file of another network loaded into a detector fills
nothing (or only the backbone) with a warning in the log, and testing then
reports metrics of a random model. This module

* reads a file with clear errors (:func:`read_checkpoint`: missing, empty,
  truncated, an HTML page, not a PyTorch file, refused by safe loading);
* says what it holds (:func:`describe_state_dict`): a detector, segmentor or
  classifier (OpenMMLab layout), a bare VAN backbone (what
  ``tools/model_converters/van_convert.py`` writes), an official VAN
  classifier, or another network, with the VAN arch read off the tensors;
* loads it into a model as mmengine does and reports which parts were
  loaded, which are missing and which tensors did not fit
  (:func:`load_and_report`);
* refuses a checkpoint that does not cover the model, saying how to use it
  instead (:func:`check_covers`); ``allow_partial=True`` loads what fits on
  purpose;
* before any of that, refuses a file named after a model-zoo file whose
  bytes do not match its name (:func:`check_model_zoo_file`: the checks of
  the verified downloader; ``mim download`` makes none).

The tools call it through :class:`CheckpointCoverageHook` (``tools/test.py``,
``load_from`` and ``--resume`` of ``tools/train.py``; the ADE20K and COCO
config bases list it in ``custom_hooks`` too, so mmseg's and mmdet's own
``tools/test.py``, ``dist_test.sh`` and ``mim test`` run it on their
``--checkpoint``) and directly (``demo/image_demo.py``).
"""

import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from .convert import (
    _BACKBONE_KEY,
    detect_format,
    gating_signature,
    split_backbone,
    to_ours,
)

#: Top-level parts that make a state dict a detector's (mmdet).
DETECTOR_PARTS = ('rpn_head', 'roi_head', 'bbox_head')
#: ... a segmentor's (mmseg).
SEGMENTOR_PARTS = ('decode_head', 'auxiliary_head')
#: How many names a message lists before "...".
SHOWN = 6


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used as asked (the message says
    why, names the file and what to do)."""


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------
def _first_bytes(path: Path, n: int = 16) -> bytes:
    with open(path, 'rb') as f:
        return f.read(n)


def quick_check(path: str, what: str = 'checkpoint') -> Path:
    """The checks of :func:`read_checkpoint` that need no unpickling:
    missing, a folder, empty, an HTML page, a truncated zip archive.

    Raises:
        CheckpointError: the file is unusable.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f'{what} {path} does not exist')
    if p.is_dir():
        raise CheckpointError(
            f'{what} {path} is a folder; give the .pth file inside it'
        )
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(
            f'{what} {path} is empty (0 bytes): an interrupted save or '
            'download. Use another checkpoint (e.g. an earlier iter_N.pth of '
            'the work dir) or download it again.'
        )
    head = _first_bytes(p)
    if head.lstrip()[:1] == b'<':
        raise CheckpointError(
            f'{what} {path} is an HTML/XML page ({size} bytes), not a '
            'PyTorch checkpoint: probably an error page saved by a download. '
            'Delete it and download the file again.'
        )
    if head[:2] == b'PK' and not zipfile.is_zipfile(p):
        raise CheckpointError(
            f'{what} {path} is truncated ({size} bytes; the end of its zip '
            'archive is missing): an interrupted save or download. Use '
            'another checkpoint or download it again.'
        )
    return p


def read_checkpoint(path: str, what: str = 'checkpoint') -> Any:
    """``torch.load`` ``path`` safely (``weights_only``), with a clear
    :class:`CheckpointError` for every way a file can be unusable.

    Args:
        path: a local file.
        what: how messages call the file (``'checkpoint'``,
            ``'pretrained backbone checkpoint'``, ...).
    """
    p = quick_check(path, what)
    size = p.stat().st_size
    head = _first_bytes(p)
    try:
        return torch.load(p, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r'WeightsUnpickler error:\s*(\S[^\n]*)', str(e))
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = m.group(1).strip() if m else ''
        detail = detail or next(
            (ln for ln in lines if 'GLOBAL' in ln), lines[0] if lines else ''
        )
        if 'global' in detail.lower():
            raise CheckpointError(
                f'{what} {path} holds Python objects that safe loading '
                f'refuses ({detail}); nothing in it was run. Only tensors, '
                'plain containers and OpenMMLab training state are accepted.'
            ) from None
        raise CheckpointError(
            f'{what} {path} is not a PyTorch checkpoint ({size} bytes, '
            f'starts with {head[:8]!r}; unpickling stopped: {detail}). '
            'Give a .pth file written by torch.save.'
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        kind = (
            'corrupt (a damaged zip archive)'
            if head[:2] == b'PK'
            else f'not a PyTorch checkpoint (starts with {head[:8]!r})'
        )
        raise CheckpointError(
            f'{what} {path} is {kind}, {size} bytes; torch says: '
            f'{type(e).__name__}: {first}'
        ) from None


def state_dict_of(checkpoint: Any, path: str = 'the file') -> 'OrderedDict':
    """The tensors of a loaded checkpoint: inside ``state_dict`` or
    ``model`` if present, ``module.`` removed; non-tensor entries dropped.

    Raises:
        CheckpointError: not a dict of tensors.
    """
    sd = checkpoint
    for wrapper in ('state_dict', 'model'):
        if isinstance(sd, Mapping) and isinstance(sd.get(wrapper), Mapping):
            sd = sd[wrapper]
            break
    if not isinstance(sd, Mapping):
        raise CheckpointError(
            f'{path} holds a {type(checkpoint).__name__}, not a dict of '
            "tensors (a state dict, possibly inside 'state_dict' or 'model')"
        )
    return OrderedDict(
        (k[len('module.') :] if k.startswith('module.') else k, v)
        for k, v in sd.items()
        if isinstance(k, str) and isinstance(v, torch.Tensor)
    )


#: The command that replaces a bad model-zoo file (the verified downloader).
REFETCH_TOOL = 'python tools/misc/download_checkpoint.py'


def check_model_zoo_file(
    path: Union[str, Path], index: Union[str, Path, None] = None
) -> Optional[str]:
    """Refuse a local file named after a model-zoo file (the ``Weights``
    of ``model-index.yml``, see :func:`~projects.van_lska.weights.download.
    model_zoo_file`) whose bytes are not what its name says, checked as the
    verified downloader checks a download (:func:`~projects.van_lska.
    weights.download.verify_file`). Files with other names pass unchecked.

    Returns:
        ``None`` (not a model-zoo name, or no such file) or one line on
        what was checked.

    Raises:
        CheckpointError: the check failed; the message names the file, what
            was expected and found, and the command that fetches it again.
    """
    from .download import (
        DownloadError,
        model_zoo_file,
        verify_local_zoo_file,
    )

    path = Path(path).expanduser()
    try:
        zoo = model_zoo_file(path.name, index)
    except FileNotFoundError as err:  # model-index.yml or a metafile
        raise CheckpointError(
            f'cannot tell whether checkpoint {path} is a model-zoo file: '
            f'{err} (a broken install: reinstall van-lska)'
        ) from None
    if zoo is None:
        return None
    try:
        return verify_local_zoo_file(path, index)
    except DownloadError as err:
        detail = str(err)
        if detail.startswith(f'{path}: '):
            detail = detail[len(f'{path}: ') :]
        folder = path.resolve().parent
        named = (
            f"{zoo.model}'s weights"
            if zoo.name == path.name
            else f"{zoo.name}, {zoo.model}'s weights"
        )
        writes = ', use that file' if zoo.name != path.name else ''
        raise CheckpointError(
            f'checkpoint {path} is not the model-zoo file it is named after '
            f'({named}): {detail}.\n'
            '  mim download checks no hash; fetch it again with: '
            f'{REFETCH_TOOL} {zoo.model} --dest {folder}\n'
            f'  (that tool moves a bad file aside to <name>.bad and '
            f'downloads {zoo.url} into {folder / zoo.name} with the '
            f'checks{writes})'
        ) from None


# --------------------------------------------------------------------------
# Describing
# --------------------------------------------------------------------------
@dataclass
class FileKind:
    """What a checkpoint holds.

    Attributes:
        kind: ``'detector'``, ``'segmentor'``, ``'classifier'``,
            ``'backbone'`` (bare VAN backbone), ``'van_classifier'``
            (official VAN classifier: bare backbone + ``head``),
            ``'model'`` (other OpenMMLab model), ``'other'`` (no VAN
            weights) or ``'empty'``.
        parts: top-level parts and their tensor counts.
        van: the VAN backbone read off the tensors (``None``: none).
        text: one line for people.
    """

    kind: str
    parts: Dict[str, int] = field(default_factory=dict)
    van: Optional[str] = None
    text: str = ''


def van_summary(backbone: Mapping) -> Optional[str]:
    """``'VAN-LSKA (LSKA with kernel_size=23) b0, official format'`` for a
    backbone state dict in any format; ``None`` if it holds no VAN
    tensors."""
    if not backbone or not any(_BACKBONE_KEY.match(k) for k in backbone):
        return None
    fmt = detect_format(backbone)
    ours = to_ours(backbone)
    if not any(
        k.startswith(('blocks', 'patch_embed'))
        and ('spatial_gating_unit' in k or 'projection' in k or '.mlp.' in k)
        for k in ours
    ):
        return None
    depths = arch_of(ours)
    sig = gating_signature(ours)
    from ..models.van import ARCH_SETTINGS

    name = next(
        (
            a
            for a, s in ARCH_SETTINGS.items()
            if depths
            and tuple(s['depths']) == depths[0]
            and tuple(s['embed_dims']) == depths[1]
        ),
        None,
    )
    arch = (
        name
        if name
        else f'depths={list(depths[0])}, embed_dims={list(depths[1])}'
        if depths
        else 'unknown arch'
    )
    gating = f'{sig}' if sig else 'unknown gating'
    return f'VAN backbone ({gating}; {arch}; {fmt} key names)'


def arch_of(
    backbone: Mapping,
) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """``(depths, embed_dims)`` of a backbone state dict in our format
    (``None`` when it has no patch embeddings)."""
    blocks: Dict[int, set] = {}
    dims: Dict[int, int] = {}
    for key, value in backbone.items():
        m = re.match(r'^blocks(\d+)\.(\d+)\.', key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        m = re.match(r'^patch_embed(\d+)\.projection\.weight$', key)
        if m:
            dims[int(m.group(1))] = int(value.shape[0])
    if not dims:
        return None
    stages = sorted(dims)
    depths = tuple(len(blocks.get(i, ())) for i in stages)
    return depths, tuple(dims[i] for i in stages)


def _parts(state_dict: Mapping) -> Dict[str, int]:
    parts: Dict[str, int] = {}
    for key in state_dict:
        top = key.split('.', 1)[0]
        parts[top] = parts.get(top, 0) + 1
    return parts


def describe_state_dict(state_dict: Mapping) -> FileKind:
    """Classify a state dict (see :class:`FileKind`)."""
    if not state_dict:
        return FileKind('empty', text='no tensors at all')
    parts = _parts(state_dict)
    names = ', '.join(f'{p} ({n})' for p, n in parts.items())
    if 'backbone' in parts:
        backbone, _ = split_backbone(state_dict)
        van = van_summary(backbone)
        if any(p in parts for p in DETECTOR_PARTS):
            kind, label = 'detector', 'an mmdet detector'
        elif any(p in parts for p in SEGMENTOR_PARTS):
            kind, label = 'segmentor', 'an mmseg segmentor'
        elif 'head' in parts:
            kind, label = 'classifier', 'an mmpretrain classifier'
        else:
            kind, label = 'model', 'an OpenMMLab model'
        with_van = f'with a {van}' if van else 'with a non-VAN backbone'
        return FileKind(
            kind, parts, van, f'{label} {with_van}; parts: {names}'
        )
    backbone, rest = split_backbone(state_dict)
    van = van_summary(backbone)
    if van:
        if any(k.startswith('head.') for k in rest):
            return FileKind(
                'van_classifier',
                parts,
                van,
                f'an official VAN classifier (bare {van} plus a '
                f'classification head, {len(state_dict)} tensors)',
            )
        return FileKind(
            'backbone',
            parts,
            van,
            f'a bare {van} with {len(backbone)} tensors (the layout '
            'tools/model_converters/van_convert.py writes)',
        )
    shown = ', '.join(list(state_dict)[:3])
    return FileKind(
        'other',
        parts,
        None,
        f'another network: no VAN weights; {len(state_dict)} tensors in '
        f'{len(parts)} top-level parts, e.g. {shown}',
    )


def describe_file(path: str) -> FileKind:
    """:func:`describe_state_dict` of a file (read with
    :func:`read_checkpoint`)."""
    return describe_state_dict(state_dict_of(read_checkpoint(path), path))


# --------------------------------------------------------------------------
# Loading and coverage
# --------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP/TTA wrappers (``.module``)."""
    from mmengine.model import BaseTTAModel, is_model_wrapper

    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


@dataclass
class Coverage:
    """What loading a state dict into a model did.

    Attributes:
        loaded: ``{part: (tensors loaded, tensors the part has)}``.
        missing: model keys the checkpoint did not fill.
        unexpected: checkpoint keys the model has no place for.
        errors: tensors that did not fit (shape) and refusals (e.g. another
            VAN arch).
    """

    loaded: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.errors)

    @property
    def loaded_parts(self) -> List[str]:
        return [p for p, (n, _) in self.loaded.items() if n]

    @property
    def missing_parts(self) -> List[str]:
        return [p for p, (n, total) in self.loaded.items() if n < total]

    def summary(self) -> str:
        def part(p: str) -> str:
            n, total = self.loaded[p]
            return f'{p} ({n} of {total})' if n < total else p

        lines = [
            '  loaded:  '
            + (', '.join(map(part, self.loaded_parts)) or 'nothing'),
            '  missing: '
            + (', '.join(map(part, self.missing_parts)) or 'nothing'),
        ]
        if self.unexpected:
            lines.append(
                f'  unused from the file: {len(self.unexpected)} tensors '
                f'({_shorten(self.unexpected)})'
            )
        for err in self.errors[:3]:
            lines.append(f'  refused: {err}')
        return '\n'.join(lines)


def _shorten(names: List[str]) -> str:
    return ', '.join(names[:SHOWN]) + (', ...' if len(names) > SHOWN else '')


def _ignorable(key: str) -> bool:
    return key.endswith('num_batches_tracked')


def load_and_report(model: nn.Module, state_dict: Mapping) -> Coverage:
    """Load ``state_dict`` into ``model`` exactly as mmengine's
    ``load_checkpoint`` does (non-strict, the backbones' own format
    conversion included) and report what was loaded.

    Refusals raised while loading (a VAN backbone refusing another arch)
    end up in :attr:`Coverage.errors`; the model may then be partly
    loaded.
    """
    model = unwrap_model(model)
    expected = [k for k in model.state_dict() if not _ignorable(k)]
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []
    sd = OrderedDict(state_dict)

    def load(module: nn.Module, local: Dict, prefix: str = '') -> None:
        module._load_from_state_dict(
            local, prefix, {}, True, missing, unexpected, errors
        )
        for name, child in module._modules.items():
            if child is not None:
                child_prefix = prefix + name + '.'
                load(
                    child,
                    {
                        k: v
                        for k, v in local.items()
                        if k.startswith(child_prefix)
                    },
                    child_prefix,
                )

    try:
        with torch.no_grad():
            load(model, sd)
    except (ValueError, RuntimeError, KeyError) as e:
        errors.append(str(e).strip().splitlines()[0])
        missing = expected  # stopped half-way: report nothing as loaded
    missing = [k for k in dict.fromkeys(missing) if not _ignorable(k)]
    bad = set()
    for err in errors:
        m = re.match(r'size mismatch for ([\w.]+):', err)
        if m:
            bad.add(m.group(1))
    report = Coverage(
        missing=missing,
        unexpected=list(dict.fromkeys(unexpected)),
        errors=errors,
    )
    absent = set(missing) | bad
    for key in expected:
        top = key.split('.', 1)[0]
        n, total = report.loaded.get(top, (0, 0))
        report.loaded[top] = (n + (key not in absent), total + 1)
    return report


def _suggestion(kind: FileKind, path: str, role: str) -> str:
    init = (
        'model.backbone.init_cfg.type=Pretrained '
        f'model.backbone.init_cfg.checkpoint={path}'
    )
    if kind.kind in ('backbone', 'van_classifier', 'classifier') and kind.van:
        return (
            'It holds ImageNet-style backbone weights: use them to '
            'initialise the backbone of a training, e.g.\n'
            f'  python tools/train.py CONFIG --cfg-options {init}\n'
            f'To {role}, give a checkpoint of this whole model (a work '
            "dir's iter_N.pth/epoch_N.pth or the model zoo's file)."
        )
    if kind.kind == 'other':
        return (
            'It holds no VAN weights at all: check the file name. '
            f'To {role}, give a checkpoint of this model.'
        )
    return (
        f'To {role}, give a checkpoint of this model (same config: task, '
        'attention, arch and heads).'
    )


def check_covers(
    model: nn.Module,
    path: str,
    allow_partial: bool = False,
    role: str = 'test the model',
    flag: str = '--allow-partial',
) -> Coverage:
    """Load ``path`` into ``model`` and refuse a checkpoint that does not
    cover it.

    Args:
        model: the built model (wrappers are looked through).
        path: checkpoint file.
        allow_partial: load what fits and only report the rest.
        role: what the user is doing, for the message.
        flag: the option that sets ``allow_partial``, for the message.

    Raises:
        CheckpointError: unreadable file, a model-zoo file whose bytes do
            not match its name (:func:`check_model_zoo_file`), a checkpoint
            that fills nothing or is refused (another arch), or (without
            ``allow_partial``) one that leaves model tensors unloaded.
    """
    quick_check(path)
    check_model_zoo_file(path)
    sd = state_dict_of(read_checkpoint(path), path)
    kind = describe_state_dict(sd)
    report = load_and_report(model, sd)
    if report.complete:
        parts = ', '.join(f'{p} ({n})' for p, (n, _) in report.loaded.items())
        print_log(
            f'checkpoint {path} covers the model: '
            f'{sum(n for n, _ in report.loaded.values())} tensors loaded '
            f'into {parts}; missing: nothing; unused from the file: '
            f'{len(report.unexpected)}',
            logger='current',
        )
        return report
    if allow_partial and report.loaded_parts and not report.errors:
        print_log(
            f'{flag}: loaded {path} ({kind.text}) partly:\n'
            + report.summary(),
            logger='current',
        )
        return report
    raise CheckpointError(
        f'checkpoint {path} does not cover the model: it is {kind.text}.\n'
        + report.summary()
        + '\n'
        + _suggestion(kind, path, role)
        + (
            f'\nTo load only the parts that fit anyway, pass {flag}.'
            if report.loaded_parts and not report.errors
            else ''
        )
    )


@HOOKS.register_module()
class CheckpointCoverageHook(Hook):
    """Before the runner loads its checkpoint (``load_from``, resume or
    testing), refuse it if it is a model-zoo file that does not match its
    name or if it does not cover the model (:func:`check_covers`).

    Args:
        checkpoint: the file the runner will load; ``None`` (what the
            config bases list): the runner's own ``load_from`` (mmseg's and
            mmdet's ``tools/test.py`` and ``mim test`` set it from their
            ``--checkpoint``). Nothing is checked when there is none (a
            training from scratch or an automatic resume).
        allow_partial: only report what is missing.
        role: what the user is doing, for the message (default: read off
            the runner: testing, validating, training or resuming).
        flag: the option that sets ``allow_partial``, for the message
            (default: the ``--cfg-options`` item of this hook's entry).
    """

    priority = 'VERY_HIGH'

    def __init__(
        self,
        checkpoint: Optional[str] = None,
        allow_partial: bool = False,
        role: Optional[str] = None,
        flag: Optional[str] = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.allow_partial = allow_partial
        self.role = role
        self.flag = flag

    def before_run(self, runner) -> None:
        # mmengine 0.10: Runner.train/val/test build their loops, call
        # before_run, and only then load_or_resume() loads _load_from.
        checkpoint = self.checkpoint or getattr(runner, '_load_from', None)
        if not checkpoint or '://' in str(checkpoint):
            return  # nothing to load; remote: the download checks it
        check_covers(
            runner.model,
            str(checkpoint),
            self.allow_partial,
            self.role or _role_of(runner),
            self.flag or _flag_of(runner),
        )


def _role_of(runner) -> str:
    """What the runner is about to do with its checkpoint, for messages."""
    from mmengine.runner import BaseLoop

    if getattr(runner, '_resume', False):
        return 'resume this training'
    if isinstance(getattr(runner, '_train_loop', None), BaseLoop):
        return 'start from it (load_from)'
    if isinstance(getattr(runner, '_test_loop', None), BaseLoop):
        return 'test the model'
    return 'evaluate the model'


def _flag_of(runner) -> str:
    """The ``--cfg-options`` item that sets this hook's ``allow_partial``."""
    hooks = list(
        (getattr(runner, 'cfg', None) or {}).get('custom_hooks') or []
    )
    index = next(
        (
            i
            for i, h in enumerate(hooks)
            if isinstance(h, Mapping)
            and h.get('type')
            in ('CheckpointCoverageHook', CheckpointCoverageHook)
        ),
        None,
    )
    if index is None:
        return 'allow_partial=True (CheckpointCoverageHook)'
    return f'--cfg-options custom_hooks.{index}.allow_partial=True'


def add_coverage_hook(
    cfg, allow_partial: bool = False, role: str = 'test the model'
) -> None:
    """Set :class:`CheckpointCoverageHook` for ``cfg.load_from`` in the
    config's ``custom_hooks``, in place: it replaces the entry the config
    bases list (``checkpoint=None``), so the checks run once.
    """
    hook = dict(
        type='CheckpointCoverageHook',
        checkpoint=cfg.load_from,
        allow_partial=allow_partial,
        role=role,
        flag='--allow-partial',
    )
    hooks = []
    for entry in list(cfg.get('custom_hooks', None) or []):
        if isinstance(entry, Mapping) and entry.get('type') in (
            'CheckpointCoverageHook',
            CheckpointCoverageHook,
        ):
            if hook is not None:
                hooks.append(hook)
                hook = None
        else:
            hooks.append(entry)
    if hook is not None:
        hooks.append(hook)
    cfg.custom_hooks = hooks
