# SPDX-License-Identifier: Apache-2.0
"""``comity forms …``: the request types, their fields and their legal-basis profiles.

Read from ``schemas/`` directly: no node needs to run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.forms.profiles import Profile, profiles
from node.forms.registry import FormType, form_types, get_form_type, schemas_dir


def list_forms(args: argparse.Namespace, console: Console) -> int:
    rows: list[dict[str, Any]] = [
        {
            "type": t.name,
            "title": t.title,
            "legal_bases": sorted(p.code for p in _profiles_of(t)),
            "payload_type": t.payload_type,
        }
        for t in form_types()
    ]
    if args.json:
        output.print_json(console, rows)
        return 0
    table = Table("type", "what", "legal bases")
    for row in rows:
        table.add_row(row["type"], row["title"], ", ".join(row["legal_bases"]))
    console.print(table)
    console.print("`comity forms show TYPE` lists a type's fields and its profiles.")
    return 0


def show_form(args: argparse.Namespace, console: Console) -> int:
    form_type = get_form_type(args.request_type)
    schema = json.loads(form_type.schema_path.read_text(encoding="utf-8"))
    example = schemas_dir() / "examples" / f"{form_type.name}.example.json"
    details: dict[str, Any] = {
        "type": form_type.name,
        "title": form_type.title,
        "schema": str(form_type.schema_path),
        "example": str(example),
        "fields": [
            {"field": path, "required": required, "meaning": meaning}
            for path, required, meaning in _fields(schema)
        ],
        "profiles": [_profile_dict(p) for p in _profiles_of(form_type)],
    }
    if args.json:
        output.print_json(console, details)
        return 0
    console.print(f"[bold]{form_type.name}[/bold]: {form_type.title}")
    console.print(f"schema {details['schema']}; example {details['example']}")
    fields = Table("field", "required", "meaning")
    for field in details["fields"]:
        fields.add_row(field["field"], "yes" if field["required"] else "", field["meaning"])
    console.print(fields)
    bases = Table("legal basis", "instrument", "categories", "max ids", "due", "source")
    for p in details["profiles"]:
        bases.add_row(
            p["code"],
            f"{p['instrument']}, {p['article']}",
            ", ".join(p["data_categories"]) or "-",
            str(p["max_indicators"]),
            p["due"],
            p["deadline_source"] or "",
        )
    console.print(bases)
    return 0


def _profiles_of(form_type: FormType) -> list[Profile]:
    return [p for p in profiles() if form_type.name in p.request_types]


def _profile_dict(profile: Profile) -> dict[str, Any]:
    deadline = profile.deadline
    due = f"{deadline.until} within {deadline.hours} h of receipt" if deadline else "no deadline"
    if profile.emergency_deadline_hours:
        due += f" ({profile.emergency_deadline_hours} h in an emergency)"
    return {
        "code": profile.code,
        "title": profile.title,
        "instrument": profile.instrument,
        "article": profile.article,
        "data_categories": sorted(profile.data_categories),
        "max_indicators": profile.max_indicators,
        "due": due,
        "deadline_source": deadline.source if deadline else None,
        "judicial_authorisation_for": sorted(profile.judicial_authorisation_for),
        "refusal_grounds": sorted(profile.refusal_grounds),
        "preservation_minimum_days": profile.preservation_minimum_days,
        "preservation_extension_days": profile.preservation_extension_days,
        "retention_days": profile.retention_days,
    }


def _fields(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, bool, str]]:
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, name in required, str(sub.get("description", ""))
        if "properties" in sub:
            yield from _fields(sub, f"{path}.")
