# SPDX-License-Identifier: Apache-2.0
"""Print the README's table of local operations and the roles that may run them, from the one
table the node enforces (node.services.access.LOCAL_OPERATIONS).

    python -m ops.permission_table        # the Markdown table
"""

from __future__ import annotations

from collections import defaultdict

from node.model.people import ROLE_PERMISSIONS, Permission, Role
from node.services.access import LOCAL_OPERATIONS


def roles_allowed(needed: frozenset[Permission]) -> list[str]:
    return [role.value for role in Role if needed & (ROLE_PERMISSIONS[role] | {Permission.SELF})]


def markdown_table() -> str:
    """One row per set of permissions: the operations needing it and the roles that hold it."""
    grouped: dict[frozenset[Permission], list[str]] = defaultdict(list)
    for operation, needed in LOCAL_OPERATIONS.items():
        grouped[needed].append(operation)
    lines = ["| operations | permission | roles |", "|---|---|---|"]
    for needed, operations in sorted(grouped.items(), key=lambda item: sorted(item[0])):
        roles = roles_allowed(needed)
        shown_roles = "every user" if len(roles) == len(Role) else ", ".join(roles)
        lines.append(
            f"| {', '.join(sorted(operations))} | {' or '.join(sorted(needed))} | {shown_roles} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
