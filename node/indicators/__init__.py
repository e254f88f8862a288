# SPDX-License-Identifier: Apache-2.0
"""Shared abuse indicators: signed indicator sets, their TLP 2.0 labels and where they may go."""
