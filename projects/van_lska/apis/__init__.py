# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""What the command-line tools call: runner set-up, testing, quickstart.

Each module is imported on its own (``from projects.van_lska.apis.runner
import ...``) so that importing the package stays cheap.
"""
