# SPDX-License-Identifier: Apache-2.0
"""Request forms: the registry of types, schema validation, indicator canonicalisation."""
