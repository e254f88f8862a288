# SPDX-License-Identifier: Apache-2.0
"""Comity node: federated exchange of signed, minimized legal assistance requests."""
