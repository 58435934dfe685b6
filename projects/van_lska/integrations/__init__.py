# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Integrations with frameworks outside OpenMMLab (optional dependencies)."""
