# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
from .checkpoint_hook import AtomicCheckpointHook
from .deploy_hook import VANDeployHook, switch_model_to_deploy

__all__ = ['AtomicCheckpointHook', 'VANDeployHook', 'switch_model_to_deploy']
