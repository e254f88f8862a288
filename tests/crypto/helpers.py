# SPDX-License-Identifier: Apache-2.0
"""Two agencies' keys and a valid envelope between them, for crypto and wire tests."""

from __future__ import annotations

from dataclasses import dataclass

from node.crypto.envelope import seal_envelope
from node.crypto.keys import AgencyKeys
from node.ids import AgencyId, new_exchange_id, new_message_id
from node.model.envelope import EnvelopeHeader, SealedEnvelope

PAYLOAD_TYPE = "application/vnd.comity.request.preservation.v1+json"


@dataclass(frozen=True)
class Pair:
    sender: AgencyKeys
    recipient: AgencyKeys

    def header(self, **overrides: object) -> EnvelopeHeader:
        fields: dict[str, object] = {
            "message_id": new_message_id(),
            "exchange_id": new_exchange_id(),
            "sequence": 1,
            "sender": AgencyId("aa-cyber-unit"),
            "recipient": AgencyId("bb-central-authority"),
            "created_at_ms": 1_790_000_000_000,
            "expires_at_ms": 1_790_086_400_000,
            "directory_version": 1,
            "payload_type": PAYLOAD_TYPE,
            "sender_encryption_key_id": self.sender.encryption_key_id,
            "recipient_encryption_key_id": self.recipient.encryption_key_id,
        }
        fields.update(overrides)
        return EnvelopeHeader(**fields)  # type: ignore[arg-type]

    def seal(self, payload: bytes, **overrides: object) -> SealedEnvelope:
        return seal_envelope(
            header=self.header(**overrides),
            payload=payload,
            sender_keys=self.sender,
            recipient_encryption_key=self.recipient.encryption_public,
        )

    @property
    def sender_signing_keys(self) -> dict[str, bytes]:
        return {self.sender.signing_key_id: self.sender.signing_public}


def make_pair() -> Pair:
    return Pair(sender=AgencyKeys.generate(), recipient=AgencyKeys.generate())
