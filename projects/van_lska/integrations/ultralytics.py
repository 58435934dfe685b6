# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""LSKA layers for Ultralytics YOLO model YAMLs, without editing Ultralytics.

Importing this module registers two layers (:func:`register` does it, and
may be called again at no cost)::

    import projects.van_lska.integrations.ultralytics  # noqa: F401
    from ultralytics import YOLO

    model = YOLO('configs/yolo/yolo11n-lska.yaml')

``LSKA``
    The LSKA gating of our backbones
    (:class:`projects.van_lska.models.attention.LSKA`, one implementation):
    ``x * conv1(dw_chain(x))``, channels in = channels out, any kernel size
    of :func:`~projects.van_lska.models.kernels.lska_kernels`' rule or the
    trivial variant. YAML arguments ``[k]`` or ``[k, trivial]``; the input
    channels are filled in, e.g. the LSKA authors' placement after SPPF::

        - [-1, 1, LSKA, [23]]

``C2PSA_LSKA``
    Ultralytics' ``C2PSA`` whose PSA blocks use LSKA instead of multi-head
    self-attention (``x + LSKA(x)``, then ``x + FFN(x)``). YAML arguments as
    ``C2PSA``'s plus the kernel, ``[c2, k, trivial, e]``; ``c2`` and the
    repeats are scaled by the model scale exactly as for ``C2PSA``::

        - [-1, 2, C2PSA_LSKA, [1024, 23]]

How the registration works. Ultralytics' ``parse_model``
(``ultralytics/nn/tasks.py``) resolves a YAML module name with
``globals()[name]``, i.e. in the namespace of ``ultralytics.nn.tasks``, so
our classes are bound there. It passes the input channels only to modules in
sets that are local to the function (``base_modules``, ``repeat_modules``)
and cannot be extended from outside; any other module gets the YAML
arguments unchanged and keeps the channel count (``c2 = ch[f]``). So
:func:`register` also wraps ``ultralytics.nn.tasks.parse_model``: before the
normal parse, each of our rows gets its channels from Ultralytics' own
bookkeeping, by parsing the rows before it plus a stand-in the parser knows
(``nn.BatchNorm2d``, which it gives ``ch[f]``, for ``LSKA``; ``C2PSA`` for
``C2PSA_LSKA``, which yields ``c1``, the scaled ``c2`` and the scaled
repeats). The rows are then written with explicit arguments and parsed
normally. Models trained with these layers pickle them by their name in this
module, so loading such a ``.pt`` imports (and registers) it again.

Ultralytics (AGPL-3.0) is an optional dependency: see :data:`INSTALL_HINT`.
"""

import ast
import copy
import functools
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn as nn

from .ultralytics_offline import INSTALL_HINT

try:
    import ultralytics.nn as ultralytics_nn
    from ultralytics.nn import tasks
    from ultralytics.nn.modules.block import C2PSA
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(f'{INSTALL_HINT} ({exc})') from exc

from ..models.attention import LSKA as LSKAGating
from ..models.kernels import GatingKernels, lska_kernels

DEFAULT_KERNEL_SIZE = 23


class LSKA(LSKAGating):
    """LSKA gating as an Ultralytics layer.

    The module *is* our backbones' :class:`~projects.van_lska.models.
    attention.LSKA`, built from the kernel size:
    ``DW_conv_h`` (1 x k1) -> ``DW_conv_v`` (k1 x 1) -> ``DW_D_conv_h``
    (1 x k2, dilation d) -> ``DW_D_conv_v`` (k2 x 1, dilation d) ->
    ``conv1`` (1 x 1), ``out = x * attn``. The LSKA authors' YOLO class names
    the same convs ``conv0h``, ``conv0v``, ``conv_spatial_h``,
    ``conv_spatial_v``, ``conv1``.

    Args:
        c1 (int): Channels ``C`` (filled in by the YAML parser).
        k (int): Kernel size: 7, 11, 15, 19 or 23, 29, 35, ... (see
            :func:`~projects.van_lska.models.kernels.lska_kernels`).
        trivial (bool): One ``1 x k`` + ``k x 1`` pair (any odd ``k >= 3``).

    Shapes: ``(N, C, H, W)`` in and out.
    """

    def __init__(
        self, c1: int, k: int = DEFAULT_KERNEL_SIZE, trivial: bool = False
    ) -> None:
        super().__init__(c1, lska_kernels(k, trivial))


class C2PSA_LSKA(C2PSA):  # noqa: N801 (the name users write in YAMLs)
    """Ultralytics' ``C2PSA`` with LSKA as the attention of its PSA blocks.

    ``cv1`` (1x1, ``C -> 2c``) splits into ``a`` and ``b``; ``b`` runs
    through ``n`` PSA blocks, each ``x + LSKA(x)`` then ``x + FFN(x)``;
    ``cv2`` (1x1) maps ``cat(a, b)`` back to ``C``. Everything but the
    attention is Ultralytics' own ``C2PSA``/``PSABlock`` code.

    Args:
        c1 (int): Input channels ``C``.
        c2 (int): Output channels, must equal ``c1`` (as for ``C2PSA``).
        n (int): Number of PSA blocks.
        k (int): LSKA kernel size.
        trivial (bool): The LSKA-trivial variant.
        e (float): Hidden channel ratio, ``c = int(C * e)``.

    Shapes: ``(N, C, H, W)`` in and out.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        k: int = DEFAULT_KERNEL_SIZE,
        trivial: bool = False,
        e: float = 0.5,
    ) -> None:
        kernels = lska_kernels(k, trivial)  # fail before building anything
        super().__init__(c1, c2, n, e)
        for block in self.m:
            block.attn = LSKAGating(self.c, kernels)


# --------------------------------------------------------------------------
# YAML rows: arguments, stand-ins for the channel look-up, final arguments
# --------------------------------------------------------------------------
def _literal(value: Any) -> Any:
    """YAML strings such as ``'True'`` as Ultralytics reads them."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _check_trivial(trivial: Any) -> None:
    if not isinstance(trivial, bool):
        raise ValueError(f'trivial must be true or false, got {trivial!r}')


def _lska_args(args: List[Any]) -> Tuple[int, bool]:
    """``[k]`` or ``[k, trivial]`` -> ``(k, trivial)``, validated."""
    if len(args) > 2:
        raise ValueError(
            f'LSKA takes [k] or [k, trivial] (channels are filled in), '
            f'got {len(args)} arguments'
        )
    k, trivial = (list(args) + [DEFAULT_KERNEL_SIZE, False][len(args) :])[:2]
    _check_trivial(trivial)
    lska_kernels(k, trivial)
    return k, trivial


def _c2psa_lska_args(args: List[Any]) -> Tuple[Any, int, bool, float]:
    """``[c2, k, trivial, e]`` (all but ``c2`` optional), validated."""
    if not 1 <= len(args) <= 4:
        raise ValueError(
            'C2PSA_LSKA takes [c2], [c2, k], [c2, k, trivial] or '
            f'[c2, k, trivial, e], got {len(args)} arguments'
        )
    defaults = [None, DEFAULT_KERNEL_SIZE, False, 0.5]
    c2, k, trivial, e = list(args) + defaults[len(args) :]
    _check_trivial(trivial)
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 0:
        raise ValueError(f'e must be a number > 0, got {e!r}')
    lska_kernels(k, trivial)
    return c2, k, trivial, e


def _resolve_lska(row, args, probe_layer: Callable) -> List[Any]:
    f, n = row[0], row[1]
    k, trivial = _lska_args(args)
    # The parser gives nn.BatchNorm2d exactly one argument: ch[f].
    c1 = probe_layer([f, 1, 'nn.BatchNorm2d', []]).num_features
    return [f, n, 'LSKA', [c1, k, trivial]]


def _resolve_c2psa_lska(row, args, probe_layer: Callable) -> List[Any]:
    f, n = row[0], row[1]
    c2, k, trivial, e = _c2psa_lska_args(args)
    # C2PSA gets c1 = ch[f], the width-scaled c2 and the depth-scaled n.
    ref = probe_layer([f, n, 'C2PSA', [c2, e]])
    c1 = ref.cv1.conv.in_channels
    c2 = ref.cv2.conv.out_channels
    return [f, 1, 'C2PSA_LSKA', [c1, c2, len(ref.m), k, trivial, e]]


#: YAML name -> (class, row resolver). The one table of what we register.
LAYERS: Dict[str, Tuple[type, Callable]] = {
    'LSKA': (LSKA, _resolve_lska),
    'C2PSA_LSKA': (C2PSA_LSKA, _resolve_c2psa_lska),
}


def resolve_rows(d: Dict, ch: int, parse: Callable) -> Dict:
    """A model dict whose ``LSKA``/``C2PSA_LSKA`` rows carry their channels.

    Args:
        d (dict): A model dict as ``yaml_model_load`` returns it.
        ch (int): Input channels of the model.
        parse (callable): Ultralytics' original ``parse_model``.

    Returns:
        dict: ``d`` itself when it has none of our rows, else a copy whose
        rows of ours have explicit arguments (see the module docstring).

    Raises:
        ValueError: A row of ours is malformed; the message names the YAML
            file, the layer index and what is allowed.
    """
    rows = list(d.get('backbone') or []) + list(d.get('head') or [])
    if not any(_is_ours(row) for row in rows):
        return d
    out = copy.deepcopy(d)
    n_backbone = len(out.get('backbone') or [])
    rows = list(out.get('backbone') or []) + list(out.get('head') or [])
    base = {k: v for k, v in out.items() if k not in ('backbone', 'head')}
    if base.get('scales') and not base.get('scale'):
        # The parser's own default, set here so it warns only once.
        base['scale'] = next(iter(base['scales']))
    source = d.get('yaml_file', 'model YAML')
    for i, row in enumerate(rows):
        if not _is_ours(row):
            continue
        name = row[2]
        where = f'{source}: layer {i} ({name}, args {row[3]!r})'
        if not isinstance(row[0], int):
            raise ValueError(
                f'{where}: {name} takes one input, `from` must be a single '
                f'layer index, got {row[0]!r}'
            )

        def probe_layer(stand_in, i=i):
            probe = dict(base, backbone=copy.deepcopy(rows[:i]) + [stand_in])
            probe['head'] = []
            model, _ = parse(probe, ch, verbose=False)
            return model[-1]

        try:
            args = [_literal(a) for a in (row[3] or [])]
            resolved = LAYERS[name][1](row, args, probe_layer)
        except ValueError as exc:
            raise ValueError(f'{where}: {exc}') from exc
        if i < n_backbone:
            out['backbone'][i] = resolved
        else:
            out['head'][i - n_backbone] = resolved
        rows[i] = resolved
    return out


def _is_ours(row: Any) -> bool:
    return (
        isinstance(row, (list, tuple))
        and len(row) == 4
        and isinstance(row[2], str)
        and row[2] in LAYERS
    )


def _wrap(parse: Callable) -> Callable:
    @functools.wraps(parse)
    def parse_model(d, ch, verbose=True):
        return parse(resolve_rows(d, ch, parse), ch, verbose)

    parse_model.van_lska_original = parse
    return parse_model


def register() -> None:
    """Make ``LSKA`` and ``C2PSA_LSKA`` nameable in Ultralytics YAMLs.

    Binds the classes in ``ultralytics.nn.tasks`` (where ``parse_model``
    looks names up), wraps ``parse_model`` there and in ``ultralytics.nn``
    (see the module docstring) and adds the classes to torch's safe globals,
    so that ``ULTRALYTICS_SAFE_LOAD=1`` (``weights_only`` loading) reads
    checkpoints that contain them. Idempotent; importing this module calls
    it.

    Raises:
        RuntimeError: Ultralytics already defines one of the names.
    """
    for name, (cls, _) in LAYERS.items():
        current = getattr(tasks, name, None)
        if current is not None and getattr(current, '__module__', None) != (
            __name__
        ):
            raise RuntimeError(
                f'ultralytics.nn.tasks already defines {name!r} '
                f'({current!r}); this Ultralytics version is not supported '
                'by projects.van_lska.integrations.ultralytics'
            )
        setattr(tasks, name, cls)
    original = getattr(tasks.parse_model, 'van_lska_original', None)
    wrapped = _wrap(original or tasks.parse_model)
    tasks.parse_model = wrapped
    if hasattr(ultralytics_nn, 'parse_model'):
        ultralytics_nn.parse_model = wrapped
    torch.serialization.add_safe_globals(
        [LSKA, C2PSA_LSKA, LSKAGating, GatingKernels]
    )


def is_registered() -> bool:
    """True when :func:`register` is in effect in this interpreter."""
    return all(
        getattr(tasks, name, None) is cls for name, (cls, _) in LAYERS.items()
    ) and hasattr(tasks.parse_model, 'van_lska_original')


def lska_layers(model: nn.Module) -> List[nn.Module]:
    """Every LSKA gating module inside ``model`` (both layer types)."""
    return [m for m in model.modules() if isinstance(m, LSKAGating)]


register()
