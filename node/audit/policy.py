# SPDX-License-Identifier: Apache-2.0
"""The witness policy an auditor applies when the caller names none. Pure, and light enough
for the command line's parser to import."""

from __future__ import annotations

DEFAULT_PROOF_QUORUM = 1
"""Witness cosignatures a proof bundle's checkpoint must carry unless the caller asks
otherwise. The federation directory names no witness quorum, so the default is the least that
still means something: at least one other member saw the checkpoint. A bundle for a record
newer than the last cosigned checkpoint carries none, and is refused."""
