#!/usr/bin/env python3
"""Writes the JSON Schema of each served version of the given CustomResourceDefinitions (their
`openAPIV3Schema`, with `apiVersion` and `kind` pinned) to deploy/kubernetes/crds/<kind>-<version>.json,
for scripts/check-deploy.sh. Usage: extract-crd-schemas.py CRD.yaml ...  The CRDs come from the
operators' repositories (Apache-2.0); deploy/kubernetes/crds/SOURCES.md says which commit.
The CRDs' patterns are Go (RE2) syntax; an inline flag after `^` (`^(?i)…`) moves to the front
(`(?i)^…`, the same match), which Python's `re` requires (check-jsonschema --regex-variant python).
Objects with declared properties reject undeclared ones (unless `x-kubernetes-preserve-unknown-fields`),
as the API server's strict field validation does: a misspelt field fails the check."""
import json
import os
import sys

import yaml


def portable(node):
    """`node` with every `pattern`'s leading `^(?flags)` written `(?flags)^`, and strict objects."""
    if isinstance(node, dict):
        out = {k: portable(v) for k, v in node.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        pattern = out.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?") and not pattern.startswith("^(?:"):
            flags, rest = pattern[1:].split(")", 1)
            out["pattern"] = flags + ")^" + rest
        return out
    if isinstance(node, list):
        return [portable(v) for v in node]
    return node


out_dir = os.path.join(os.path.dirname(__file__), "..", "deploy", "kubernetes", "crds")
for path in sys.argv[1:]:
    with open(path) as f:
        crd = yaml.safe_load(f)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = portable(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
        schema["properties"]["kind"] = {"const": kind}
        schema["properties"]["metadata"] = {"type": "object"}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "spec"})
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        name = f"{kind.lower()}-{version['name']}.json"
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(schema, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name)
