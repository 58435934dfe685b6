# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""``VANDeployHook``: run the fast inference path in ``tools/test.py``.

Add it to a config (or pass ``--deploy`` to ``tools/test.py``)::

    custom_hooks = [dict(type='VANDeployHook')]

In ``before_test`` -- after the runner has loaded the checkpoint -- it calls
``switch_to_deploy()`` on every ``VANBackbone`` in the model (through any
wrapper). It deliberately does nothing in ``before_val``: validation also
runs between training epochs, and a deployed backbone cannot train. The
hook is registered in mmengine's root ``HOOKS`` registry, which the
registries of mmdet, mmseg and mmpretrain fall back to.
"""

from typing import List, Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..models.van import VANBackbone


def switch_model_to_deploy(
    model: nn.Module, channels_last: Optional[bool] = None
) -> List[str]:
    """Switch every :class:`VANBackbone` inside ``model`` to deploy mode.

    Args:
        model (nn.Module): Any model (detector, segmentor, classifier or a
            backbone), wrapped or not.
        channels_last (bool, optional): See
            :meth:`VANBackbone.switch_to_deploy`.

    Returns:
        list[str]: Names of the switched backbones (``''`` for ``model``).
    """
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, VANBackbone)
    ]
    for name in names:
        model.get_submodule(name).switch_to_deploy(channels_last)
    return names


@HOOKS.register_module()
class VANDeployHook(Hook):
    """Switch VAN backbones to their fast inference path before testing.

    Args:
        channels_last (bool, optional): Deploy memory format; ``None``
            (default) lets each backbone choose (``channels_last`` for LSKA
            on CPU).
    """

    priority = 'VERY_LOW'

    def __init__(self, channels_last: Optional[bool] = None) -> None:
        self.channels_last = channels_last

    def before_test(self, runner) -> None:
        names = switch_model_to_deploy(runner.model, self.channels_last)
        print_log(
            f'VANDeployHook: switched {len(names)} VAN backbone(s) to '
            f'deploy mode: {", ".join(n or "<model>" for n in names)}',
            logger='current',
        )
