# SPDX-License-Identifier: Apache-2.0
"""Benchmarks, run as modules from the repository root: python -m ops.bench.NAME."""
