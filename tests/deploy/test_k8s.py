"""The Kubernetes manifests (deploy/k8s): both overlays render with `kubectl kustomize`, every
rendered object validates against the Kubernetes 1.29 OpenAPI schemas (kubernetes-validate,
offline), and the properties a reviewer checks by hand hold on every object.

Needs kubectl and the venv of deploy/local/lib.sh casb_install_deploy_test_deps:
    .local/venv-deploy/bin/python -m pytest -q tests/deploy/test_k8s.py
"""

import functools
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="run casb_install_deploy_test_deps (deploy/local/lib.sh)")

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
K8S_VERSION = "1.29"
SERVICES = {"integration-manager": 8081, "findings-api": 8082, "scheduler": 8083,
            "scanner-worker": 8084}
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|DATABASE_URL")
IM_PATHS = ["/v1/integrations", "/v1/providers", "/v1/tokens", "/v1/audit-log"]


@functools.lru_cache(maxsize=None)
def render(overlay):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl not found: run casb_install_deploy_test_deps (deploy/local/lib.sh)")
    out = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl kustomize {overlay}: {out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def objects(overlay, kind):
    return [o for o in render(overlay) if o["kind"] == kind]


def one(overlay, kind, name):
    found = [o for o in objects(overlay, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: {kind}/{name} x{len(found)}"
    return found[0]


def pod_specs(overlay):
    """(owner, pod spec) of every Deployment and Job."""
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in render(overlay) if o["kind"] in ("Deployment", "Job")]


def all_containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_openapi_schemas(overlay):
    docs = render(overlay)
    assert len(docs) > 20
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {e.message} "
                        f"at {list(e.path)}")


def test_validator_rejects_a_bad_object():
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replicas": "two", "unknownField": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_deployment_service_account_pdb(overlay):
    for svc, port in SERVICES.items():
        name = f"casb-{svc}"
        dep = one(overlay, "Deployment", name)
        sa = one(overlay, "ServiceAccount", name)
        one(overlay, "PodDisruptionBudget", name)
        service = one(overlay, "Service", name)
        assert sa["automountServiceAccountToken"] is False
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == name
        assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        for key, want in service["spec"]["selector"].items():
            assert pod_labels.get(key) == want, f"{overlay}: Service {name} selects no pod"
        addr = [c for c in render(overlay) if c["kind"] == "ConfigMap"
                and c["metadata"]["name"].startswith(name + "-")]
        assert len(addr) == 1 and addr[0]["data"]["CASB_HTTP_ADDR"] == f"0.0.0.0:{port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_common_labels_on_every_object(overlay):
    for o in render(overlay):
        labels = o["metadata"].get("labels", {})
        for key in ("name", "component", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, \
                f"{overlay}: {o['kind']}/{o['metadata']['name']} lacks app.kubernetes.io/{key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_context_on_every_pod_and_container(overlay):
    for owner, spec in pod_specs(overlay):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, owner
        assert psc["runAsUser"] == 10001 and psc["runAsGroup"] == 10001, owner
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", owner
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in all_containers(spec):
            sc = c["securityContext"]
            where = f"{owner} container {c['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] == 10001 and sc["runAsGroup"] == 10001, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes
                       for m in c.get("volumeMounts", [])), f"{where}: no emptyDir at /tmp"
            assert c["resources"]["requests"].keys() >= {"cpu", "memory"}, where
            assert c["resources"]["limits"].keys() >= {"cpu", "memory"}, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_on_every_deployment(overlay):
    for dep in objects(overlay, "Deployment"):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            where = f"{dep['metadata']['name']}/{c['name']}"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert c["startupProbe"]["httpGet"]["path"] == "/healthz", where
            ports = {p["name"] for p in c["ports"]}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert c[probe]["httpGet"]["port"] in ports, f"{where} {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_only_by_reference(overlay):
    assert not objects(overlay, "Secret"), "a Secret in the manifests"
    for owner, spec in pod_specs(overlay):
        for c in all_containers(spec):
            names = set()
            for e in c.get("env", []):
                names.add(e["name"])
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e, f"{owner}: literal {e['name']}"
                    ref = e["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "casb-secrets", f"{owner}: {e['name']}"
            assert "CASB_DATABASE_URL" in names, f"{owner}/{c['name']}"
            for ef in c.get("envFrom", []):
                assert "secretRef" not in ef, owner
    for cm in objects(overlay, "ConfigMap"):
        secret_keys = [k for k in cm.get("data", {}) if SECRET_NAME.search(k)]
        assert not secret_keys, f"{cm['metadata']['name']}: {secret_keys}"


def secret_env(overlay, svc):
    dep = one(overlay, "Deployment", f"casb-{svc}")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_gets_its_secrets(overlay):
    want = {
        "integration-manager": {"CASB_DATABASE_URL": "database-url",
                                "CASB_MASTER_KEY": "master-key", "CASB_ADMIN_TOKEN": "admin-token",
                                "CASB_GITHUB_OAUTH_CLIENT_SECRET": "github-oauth-client-secret"},
        "scanner-worker": {"CASB_DATABASE_URL": "database-url", "CASB_MASTER_KEY": "master-key",
                           "CASB_GITHUB_OAUTH_CLIENT_SECRET": "github-oauth-client-secret"},
        "findings-api": {"CASB_DATABASE_URL": "database-url", "CASB_MASTER_KEY": "master-key",
                         "CASB_ADMIN_TOKEN": "admin-token"},
        "scheduler": {"CASB_DATABASE_URL": "database-url"},
    }
    for svc, refs in want.items():
        got = secret_env(overlay, svc)
        for var, key in refs.items():
            assert got[var]["key"] == key, f"{svc} {var}"
            optional = key == "github-oauth-client-secret"
            assert got[var].get("optional", False) is optional, f"{svc} {var}"
        # The bootstrap administrator's token only where it is used.
        assert ("CASB_ADMIN_TOKEN" in got) == ("CASB_ADMIN_TOKEN" in refs), svc


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes(overlay):
    ing = one(overlay, "Ingress", "casb")
    spec = ing["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert len(spec["tls"]) == 1 and spec["tls"][0]["secretName"]
    assert spec["tls"][0]["hosts"] == [spec["rules"][0]["host"]]
    assert len(spec["rules"]) == 1
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]["name"])
              for p in spec["rules"][0]["http"]["paths"]}
    want = {p: ("Prefix", "casb-integration-manager") for p in IM_PATHS}
    want["/"] = ("Prefix", "casb-findings-api")
    assert routes == want
    services = {s["metadata"]["name"]: s for s in objects(overlay, "Service")}
    for p in spec["rules"][0]["http"]["paths"]:
        svc = services[p["backend"]["service"]["name"]]
        assert p["backend"]["service"]["port"]["name"] in {x["name"] for x in svc["spec"]["ports"]}


def policies(overlay):
    return {p["metadata"]["name"]: p["spec"] for p in objects(overlay, "NetworkPolicy")}


def selects(selector, labels):
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        assert e["operator"] == "In"
        if labels.get(e["key"]) not in e["values"]:
            return False
    return True


def pod_labels(overlay, svc):
    return one(overlay, "Deployment", f"casb-{svc}")["spec"]["template"]["metadata"]["labels"]


def applying(overlay, svc, direction):
    """The NetworkPolicy specs of that direction that select svc's pods."""
    labels = pod_labels(overlay, svc)
    return [spec for spec in policies(overlay).values()
            if direction in spec.get("policyTypes", []) and selects(spec["podSelector"], labels)]


def egress_ports(overlay, svc):
    """(port, protocol, peer kind) reachable from svc's pods."""
    out = set()
    for spec in applying(overlay, svc, "Egress"):
        for rule in spec.get("egress", []):
            for peer in rule.get("to", []):
                kind = "ipBlock" if "ipBlock" in peer else "selector"
                for port in rule.get("ports", []):
                    out.add((port["port"], port.get("protocol", "TCP"), kind))
    return out


def ingress_sources(overlay, svc):
    """(namespace, port) allowed into svc's pods."""
    out = set()
    for spec in applying(overlay, svc, "Ingress"):
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for port in rule["ports"]:
                    out.add((ns, port["port"]))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(overlay):
    deny = [s for s in policies(overlay).values() if s["podSelector"] == {}
            and sorted(s["policyTypes"]) == ["Egress", "Ingress"]
            and not s.get("ingress") and not s.get("egress")]
    assert len(deny) == 1, "no default deny"
    internet = {"scanner-worker", "findings-api", "integration-manager"}
    for svc, port in SERVICES.items():
        eg = egress_ports(overlay, svc)
        for need in [(53, "UDP", "selector"), (53, "TCP", "selector"), (5432, "TCP", "selector"),
                     (9092, "TCP", "selector")]:
            assert need in eg, f"{svc} cannot reach {need}"
        assert ((443, "TCP", "ipBlock") in eg) == (svc in internet), svc
        assert {p for p, _, _ in eg} <= {53, 443, 5432, 9092}, f"{svc}: {eg}"
        src = ingress_sources(overlay, svc)
        assert ("monitoring", port) in src, svc
        from_ingress = ("ingress-nginx", port) in src
        assert from_ingress == (svc in ("integration-manager", "findings-api")), svc
        assert {ns for ns, _ in src} <= {"monitoring", "ingress-nginx"}, f"{svc}: {src}"
    https = policies(overlay)["casb-allow-https-egress"]["egress"][0]["to"][0]["ipBlock"]
    assert https["cidr"] == "0.0.0.0/0" and "169.254.0.0/16" in https["except"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpa_targets_scanner_worker(overlay):
    hpas = objects(overlay, "HorizontalPodAutoscaler")
    assert len(hpas) == 1
    spec = hpas[0]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "casb-scanner-worker"}
    assert "replicas" not in one(overlay, "Deployment", "casb-scanner-worker")["spec"]
    kinds = [m["type"] for m in spec["metrics"]]
    assert kinds[0] == "Resource" and spec["metrics"][0]["resource"]["name"] == "cpu"
    if overlay == "prod":
        assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 6)  # the jobs topic's partitions
        ext = spec["metrics"][1]["external"]["metric"]
        assert ext["name"] == "kafka_consumergroup_lag"
        assert ext["selector"]["matchLabels"] == {"consumergroup": "casb-scanner-worker",
                                                  "topic": "casb.scan.jobs"}
    else:
        assert spec["maxReplicas"] <= 2 and kinds == ["Resource"]


def test_overlay_differences():
    for svc in ("integration-manager", "findings-api", "scheduler"):
        assert one("dev", "Deployment", f"casb-{svc}")["spec"]["replicas"] == 1
        assert one("prod", "Deployment", f"casb-{svc}")["spec"]["replicas"] == 2
    for svc in SERVICES:
        assert "minAvailable" in one("prod", "PodDisruptionBudget", f"casb-{svc}")["spec"]
        assert "maxUnavailable" not in one("prod", "PodDisruptionBudget", f"casb-{svc}")["spec"]
    for overlay, tag in (("dev", ":dev"), ("prod", ":REPLACE_RELEASE_TAG")):
        for owner, spec in pod_specs(overlay):
            for c in all_containers(spec):
                assert c["image"].endswith(tag), f"{overlay} {owner}: {c['image']}"
        namespaces = {o["metadata"].get("namespace") for o in render(overlay)
                      if o["kind"] != "Namespace"}
        assert len(namespaces) == 1 and None not in namespaces, f"{overlay}: {namespaces}"
        ns = objects(overlay, "Namespace")
        assert [n["metadata"]["name"] for n in ns] == list(namespaces)
        assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_init_job_migrates_then_creates_topics(overlay):
    job = one(overlay, "Job", "casb-init")
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "init"
    spec = job["spec"]["template"]["spec"]
    steps = [c["command"] for c in all_containers(spec)]
    assert steps == [["/usr/local/bin/casb-integration-manager", "migrate"],
                     ["/usr/local/bin/casb-integration-manager", "create-topics"]]
    assert spec["restartPolicy"] in ("OnFailure", "Never")
    # What the Job needs in the first apply step (deploy/k8s/README.md) carries a label of it.
    first_step = {"init", "config", "network-policy", "namespace"}
    for c in all_containers(spec):
        for ef in c.get("envFrom", []):
            cm = one(overlay, "ConfigMap", ef["configMapRef"]["name"])
            assert cm["metadata"]["labels"]["app.kubernetes.io/component"] in first_step
    sa = one(overlay, "ServiceAccount", spec["serviceAccountName"])
    assert sa["metadata"]["labels"]["app.kubernetes.io/component"] in first_step


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmaps_referenced_exist(overlay):
    names = {c["metadata"]["name"] for c in objects(overlay, "ConfigMap")}
    for owner, spec in pod_specs(overlay):
        for c in all_containers(spec):
            for ef in c.get("envFrom", []):
                assert ef["configMapRef"]["name"] in names, owner


HELP_VAR = re.compile(r"^  (CASB_[A-Z0-9_]+) \(([^)]*)\)", re.M)


@functools.lru_cache(maxsize=None)
def required_vars(*argv):
    """The variables `<binary> [subcommand] --help` marks required (no default)."""
    build = pathlib.Path(os.environ.get("CASB_BUILD_DIR", ROOT / "build"))
    binary = build / argv[0]
    assert binary.exists(), f"{binary} not built (set CASB_BUILD_DIR)"
    out = subprocess.run([str(binary), *argv[1:], "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, f"{' '.join(argv)} --help: {out.stderr}"
    return {v for v, attrs in HELP_VAR.findall(out.stdout) if "required" in attrs}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_required_variables_reach_every_container(overlay):
    """Each container's command gets every variable it requires, from its ConfigMaps or a
    secret reference: a missing one would stop the pod at start (exit 2)."""
    maps = {c["metadata"]["name"]: set(c.get("data", {})) for c in objects(overlay, "ConfigMap")}
    for owner, spec in pod_specs(overlay):
        for c in all_containers(spec):
            cmd = (c.get("command") or []) + (c.get("args") or [])
            cmd = [os.path.basename(w) if i == 0 else w
                   for i, w in enumerate(x for x in cmd if x not in ("/usr/bin/tini", "--"))]
            assert cmd and cmd[0].startswith("casb-"), f"{owner}: command {cmd}"
            sub = cmd[1:2] if len(cmd) > 1 and not cmd[1].startswith("-") else []
            given = {e["name"] for e in c.get("env", [])}
            for ef in c.get("envFrom", []):
                given |= maps.get(ef["configMapRef"]["name"], set())
            missing = required_vars(cmd[0], *sub) - given
            assert not missing, f"{overlay} {owner} {c['name']}: {' '.join(cmd)} requires {sorted(missing)}"
