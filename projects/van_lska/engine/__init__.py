# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
from .deploy_hook import VANDeployHook, switch_model_to_deploy

__all__ = ['VANDeployHook', 'switch_model_to_deploy']
