# SPDX-License-Identifier: Apache-2.0
"""This node as a witness of the other members' logs, and the collection of cosignatures for
its own log.

A witness cosigns a checkpoint only when it is signed by a member's listed log key and is a
consistent extension of the last checkpoint the witness cosigned for that log; it keeps that
last checkpoint in the same transaction as it decides, under a row lock. A log that showed
two witnesses (or two auditors) different histories can therefore not have both cosigned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nacl.signing import SigningKey

from node.audit.merkle import ProofError, verify_consistency
from node.audit.names import log_origin, witness_name
from node.audit.note import NoteError, NoteVerifier, cosign, split_note
from node.audit.verify import AuditError, open_checkpoint
from node.errors import ComityError, ErrorKind, UnknownSenderError
from node.ids import AgencyId
from node.members import Directory
from node.storage import witness_repo
from node.storage.database import Database
from node.storage.engine import transaction


class WitnessConflictError(ComityError):
    """The checkpoint does not extend what this witness last cosigned for the log."""

    kind = ErrorKind.PRECONDITION
    code = "witness_conflict"


class WitnessService:
    def __init__(
        self,
        *,
        database: Database,
        key: SigningKey,
        agency_id: AgencyId,
        directory: Directory,
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._key = key
        self.name = witness_name(agency_id)
        self._directory = directory
        self._clock = clock

    async def add_checkpoint(self, *, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Cosign ``note`` if it extends the last checkpoint cosigned for its log.

        Raises:
            UnknownSenderError: the log is not a member's.
            AuditError: the note's signature or form is bad.
            WitnessConflictError: ``old_size`` is stale, or the log is not consistent.
        """
        try:
            text, _ = split_note(note)
        except NoteError as e:
            raise AuditError(f"not a signed checkpoint: {e.message}") from e
        checkpoint = open_checkpoint(note, self._verifier_for(AgencyId(text.split("\n", 1)[0])))

        def decide() -> None:
            with transaction(self._database.engine) as session:
                state = witness_repo.witness_state(session, checkpoint.origin)
                size, root = (state.size, state.root) if state else (0, b"")
                if old_size != size:
                    raise WitnessConflictError(f"this witness holds size {size} of the log")
                if checkpoint.size < size:
                    raise WitnessConflictError("the checkpoint is older than the one cosigned")
                if size:
                    try:
                        verify_consistency(
                            old_size=size,
                            old_root=root,
                            new_size=checkpoint.size,
                            new_root=checkpoint.root,
                            proof=proof,
                        )
                    except ProofError as e:
                        raise WitnessConflictError(
                            "the checkpoint is not consistent with the one cosigned before"
                        ) from e
                witness_repo.save_witness_state(
                    session,
                    origin=checkpoint.origin,
                    size=checkpoint.size,
                    root=checkpoint.root,
                    now_ms=self._clock(),
                )

        await self._database.run(decide)
        cosigned = cosign(note, name=self.name, key=self._key, timestamp=self._clock() // 1000)
        return cosigned.rstrip("\n").rsplit("\n", 1)[1]

    def _verifier_for(self, origin: AgencyId) -> NoteVerifier:
        for member in self._directory.members():
            if log_origin(member.agency_id) == origin:
                return NoteVerifier.for_key(origin, member.checkpoint_key)
        raise UnknownSenderError(f"{origin} is not the log of a federation member")
