# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Helpers for tests and benchmarks: reference modules written from the
papers' formulations, weight randomisers and tiny datasets."""
