# SPDX-License-Identifier: Apache-2.0
"""Fixed keys for the fuzz targets and their seeds.

Fixed rather than generated, so that the committed seed corpus (sealed envelopes, signed
receipts, notes, bundles) still opens and verifies in every later run.
"""

from __future__ import annotations

import hashlib

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from node.audit.note import NoteVerifier
from node.crypto.keys import AgencyKeys
from node.ids import AgencyId, ExchangeId, MessageId

SENDER = AgencyId("aa-cyber-unit")
RECIPIENT = AgencyId("bb-central-authority")
MESSAGE_ID = MessageId("0b3c2c0e-7a51-4a8e-9c1e-2f5d6b7a8c9d")
EXCHANGE_ID = ExchangeId("2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b")
LOG_ORIGIN = "comity/bb-central-authority/audit/v1"
WITNESS_NAME = "comity/aa-cyber-unit/witness"


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"comity fuzz " + label.encode()).digest()


def _agency(name: str) -> AgencyKeys:
    return AgencyKeys(
        signing=SigningKey(_seed(f"{name} signing")),
        encryption=PrivateKey(_seed(f"{name} encryption")),
        checkpoint=SigningKey(_seed(f"{name} checkpoint")),
        witness=SigningKey(_seed(f"{name} witness")),
    )


SENDER_KEYS = _agency(SENDER)
RECIPIENT_KEYS = _agency(RECIPIENT)
LOG_VERIFIER = NoteVerifier.for_key(LOG_ORIGIN, RECIPIENT_KEYS.checkpoint_public)
WITNESSES = {WITNESS_NAME: SENDER_KEYS.witness_public}
SET_OWNER_KEY = SigningKey(_seed("indicator set owner"))
