"""Validate JSON bodies against Kalshi's published OpenAPI 3.31.0 schemas in ``../shared/spec``:
the order-endpoint extract by default, the order-groups extract with ``spec=GROUPS_FILE``.

Under CI (``CI=true``) a missing spec fails the test; elsewhere such a test is skipped with the
reason, as the project's ground rules say.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "spec"
SPEC_FILE = SPEC / "kalshi-openapi-3.31.0-orders.yaml"
GROUPS_FILE = SPEC / "kalshi-openapi-3.31.0-order-groups.yaml"


def _wrap_nullable_refs(node: Any) -> Any:
    # OpenAPI 3.0 ignores siblings of $ref, and openapi-schema-validator also refuses null for a
    # `nullable: true` beside `allOf`; the spec's README says to fix such fields when loading.
    # "either the schema or null" says what the spec means.
    if isinstance(node, dict):
        fixed = {key: _wrap_nullable_refs(value) for key, value in node.items()}
        if fixed.get("nullable") is True and ("$ref" in fixed or "allOf" in fixed):
            del fixed["nullable"]
            if "$ref" in fixed:
                fixed["allOf"] = [{"$ref": fixed.pop("$ref")}]
            return {"anyOf": [fixed, {"nullable": True, "enum": [None]}]}
        return fixed
    if isinstance(node, list):
        return [_wrap_nullable_refs(value) for value in node]
    return node


@functools.cache
def _components(spec: Path = SPEC_FILE) -> dict[str, Any]:
    with spec.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    components: dict[str, Any] = _wrap_nullable_refs(loaded["components"])
    return components


@functools.cache
def _spec_paths(spec: Path = SPEC_FILE) -> dict[str, Any]:
    with spec.open(encoding="utf-8") as handle:
        paths: dict[str, Any] = _wrap_nullable_refs(yaml.safe_load(handle)["paths"])
    return paths


def require_spec(spec: Path = SPEC_FILE) -> None:
    """Fail under CI, skip elsewhere, when ``../shared/spec`` is not beside the repo."""
    if spec.is_file():
        return
    reason = f"Kalshi OpenAPI extract not found at {spec}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def validate_schema(name: str, body: Any, spec: Path = SPEC_FILE) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` fits components/schemas/<name>."""
    require_spec(spec)
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components(spec)}
    OAS30Validator(schema).validate(body)


def validate_operation(
    path: str, method: str, status: str, body: Any, spec: Path = SPEC_FILE
) -> None:
    """Validate a response body against the schema the spec declares for that operation."""
    require_spec(spec)
    operation = _spec_paths(spec)[path][method.lower()]
    response = operation["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = _components(spec)["responses"][name]
    schema = dict(response["content"]["application/json"]["schema"])
    schema["components"] = _components(spec)
    OAS30Validator(schema).validate(body)
