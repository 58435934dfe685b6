# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Model analyses: complexity, speed, and the papers' analyses.

Each module is imported on its own; optional dependencies (``grad-cam``,
``imagecorruptions``) are only needed by the modules that use them.
"""
