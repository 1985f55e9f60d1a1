"""The Helm chart charts/dovetail as `helm template` renders it: what it makes,
that Kubernetes would accept it, that the pod meets the restricted Pod Security
Standard, that RBAC names no wildcard, and that bad values are refused naming
the key.

Run through tests/chart/run, which installs the two libraries it needs
(helm-python-sdk: Helm's own renderer and linter; kubernetes-validate: the
Kubernetes API schemas). `DOVETAIL_BLESS=1 tests/chart/run` rewrites the golden
render.
"""

import base64
import copy
import difflib
import json
import os
import pathlib
import re
import unittest

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHART = ROOT / "charts" / "dovetail"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
GOLDEN = HERE / "golden" / "default.yaml"

RELEASE = "dovetail"
NAMESPACE = "kube-system"
# What an install must give: the chart refuses to render without them.
REQUIRED = {
    "settings": {
        "clusterName": "my-cluster",
        "clusterEndpoint": "https://ABCD1234.gr7.us-east-1.eks.amazonaws.com",
    }
}
# The oldest and newest Kubernetes the manifests are checked against.
KUBE_VERSIONS = ("1.33.0", "1.37.0")

def merged(*layers):
    """Deep-merges values layers, later ones winning."""
    out = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def with_required(values=None):
    return merged(REQUIRED, values or {})


def full_values():
    return yaml.safe_load(FULL_VALUES.read_text())


def render(values=None, namespace=NAMESPACE):
    """Template path -> rendered text, as `helm template` renders it."""
    return helm.Chart.load(CHART).render(values=values, name=RELEASE, namespace=namespace)


def objects(rendered):
    """Every object the templates made (NOTES.txt is not a manifest)."""
    out = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        out.extend(d for d in yaml.safe_load_all(rendered[path]) if d)
    return out


def crd_objects():
    out = []
    for crd in helm.Chart.load(CHART).crds:
        out.extend(d for d in yaml.safe_load_all(crd["data"]) if d)
    return out


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def container(objs):
    deployment = one(objs, "Deployment")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "controller")


def env_of(objs):
    return {e["name"]: e for e in container(objs)["env"]}


def golden_text(rendered):
    """The render as `helm template` prints it, minus NOTES.txt."""
    parts = []
    for path in sorted(rendered):
        body = rendered[path].strip()
        if path.endswith("NOTES.txt") or not body:
            continue
        parts.append(f"---\n# Source: {path}\n{body}\n")
    return "".join(parts)


# -- The restricted Pod Security Standard, rule by rule
# (https://kubernetes.io/docs/concepts/security/pod-security-standards/,
# Kubernetes 1.33): the baseline profile's rules and the restricted ones.

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}


def restricted_violations(template):
    """Why a pod template breaks the restricted profile; empty when it meets it."""
    meta = template.get("metadata") or {}
    spec = template["spec"]
    psc = spec.get("securityContext") or {}
    containers = [
        (f"{field}[{c['name']}]", c, c.get("securityContext") or {})
        for field in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(field) or []
    ]
    contexts = [("pod", psc)] + [(name, sc) for name, _, sc in containers]
    v = []
    # Baseline.
    for name, sc in contexts:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            v.append(f"{name}: windowsOptions.hostProcess")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            v.append(f"pod: {field}")
    for name, c, sc in containers:
        if sc.get("privileged"):
            v.append(f"{name}: privileged")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                v.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            v.append(f"{name}: procMount {sc['procMount']}")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            v.append(f"volume {vol['name']}: hostPath")
    for name, sc in contexts:
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            v.append(f"{name}: appArmorProfile {apparmor}")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES:
            v.append(f"{name}: seLinuxOptions.type {selinux['type']}")
        if selinux.get("user") or selinux.get("role"):
            v.append(f"{name}: seLinuxOptions.user/role set")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            v.append(f"{name}: seccompProfile Unconfined")
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            v.append(f"annotation {key}: {value}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            v.append(f"pod: sysctl {sysctl['name']}")
    # Restricted.
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            v.append(f"volume {vol['name']}: type {', '.join(sorted(kinds - RESTRICTED_VOLUME_TYPES))}")
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    if psc.get("runAsUser") == 0:
        v.append("pod: runAsUser 0")
    for name, _, sc in containers:
        if sc.get("allowPrivilegeEscalation") is not False:
            v.append(f"{name}: allowPrivilegeEscalation not false")
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot") is True):
            v.append(f"{name}: runAsNonRoot not true")
        if sc.get("runAsUser") == 0:
            v.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if not (seccomp in ("RuntimeDefault", "Localhost") or (seccomp is None and pod_seccomp)):
            v.append(f"{name}: seccompProfile not RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            v.append(f"{name}: capabilities do not drop ALL")
        for cap in caps.get("add") or []:
            if cap != "NET_BIND_SERVICE":
                v.append(f"{name}: adds capability {cap}")
            if cap not in BASELINE_CAPABILITIES:
                v.append(f"{name}: adds non-baseline capability {cap}")
    return v


# -- A ServiceMonitor's shape. kubernetes-validate has schemas for Kubernetes'
# own kinds only, so it cannot check this CRD's objects; these are the fields
# of monitoring.coreos.com/v1 the chart writes or lets values add.
SERVICE_MONITOR_ENDPOINT_FIELDS = {
    "port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
    "honorTimestamps", "relabelings", "metricRelabelings", "tlsConfig",
    "authorization", "bearerTokenSecret", "params", "followRedirects",
    "enableHttp2", "filterRunning", "proxyUrl", "basicAuth", "oauth2",
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {f: {} for f in SERVICE_MONITOR_ENDPOINT_FIELDS},
                    },
                },
            },
        },
    },
}


def rust_source(path):
    return (ROOT / path).read_text()


class Renders(unittest.TestCase):
    def test_default_values_make_the_controller_and_its_rbac(self):
        objs = objects(render(with_required()))
        kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
        self.assertEqual(
            kinds,
            sorted([
                ("ServiceAccount", "dovetail"),
                ("Deployment", "dovetail"),
                ("PodDisruptionBudget", "dovetail"),
                ("Service", "dovetail"),
                ("ClusterRole", "dovetail-core"),
                ("ClusterRoleBinding", "dovetail-core"),
                ("ClusterRole", "dovetail"),
                ("ClusterRoleBinding", "dovetail"),
                ("ClusterRole", "dovetail-admin"),
                ("Role", "dovetail"),
                ("RoleBinding", "dovetail"),
                ("Role", "dovetail-kubernetes-service"),
                ("RoleBinding", "dovetail-kubernetes-service"),
            ]),
            "no ServiceMonitor or policy ConfigMap by default",
        )
        deployment = one(objs, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        self.assertEqual(deployment["spec"]["replicas"], 2)
        self.assertEqual(pod["priorityClassName"], "system-cluster-critical")
        self.assertEqual(pod["serviceAccountName"], "dovetail")
        self.assertEqual(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
            [{"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}],
            "the controller never runs on a node it manages",
        )
        selector = deployment["spec"]["selector"]["matchLabels"]
        anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(anti, [{"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}}])
        self.assertEqual(
            pod["topologySpreadConstraints"],
            [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
              "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": selector}}],
        )
        self.assertEqual(pod["tolerations"], [{"key": "CriticalAddonsOnly", "operator": "Exists"}])
        c = container(objs)
        self.assertEqual(c["args"], ["controller"])
        self.assertEqual(c["resources"], {"requests": {"cpu": "1", "memory": "1Gi"},
                                          "limits": {"cpu": "1", "memory": "1Gi"}})
        self.assertEqual(one(objs, "PodDisruptionBudget")["spec"]["maxUnavailable"], 1)
        self.assertEqual(one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], selector)
        self.assertEqual(one(objs, "Service")["spec"]["selector"], selector)

    def test_the_settings_reach_the_controller_under_karpenters_names(self):
        env = env_of(objects(render(with_required())))
        values = {k: e.get("value") for k, e in env.items()}
        self.assertEqual(values["CLUSTER_NAME"], "my-cluster")
        self.assertEqual(values["CLUSTER_ENDPOINT"], REQUIRED["settings"]["clusterEndpoint"])
        self.assertEqual(values["CLOUD_PROVIDER"], "aws")
        self.assertEqual(values["LEADER_ELECTION_NAME"], "dovetail-leader-election")
        self.assertEqual((values["METRICS_PORT"], values["HEALTH_PROBE_PORT"]), ("8080", "8081"))
        self.assertEqual((values["BATCH_MAX_DURATION"], values["BATCH_IDLE_DURATION"]), ("10s", "1s"))
        self.assertEqual(
            values["FEATURE_GATES"],
            "ReservedCapacity=true,SpotToSpotConsolidation=false,NodeRepair=false,"
            "NodeOverlay=false,StaticCapacity=false,CapacityBuffer=false",
        )
        self.assertNotIn("INTERRUPTION_QUEUE", values, "unset: no interruption handling")
        self.assertNotIn("SERVICE_CIDR", values, "unset: read from the kubernetes Service")
        self.assertEqual(env["SYSTEM_NAMESPACE"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.namespace"}})
        self.assertEqual(
            env["CPU_REQUESTS"]["valueFrom"]["resourceFieldRef"],
            {"containerName": "controller", "resource": "requests.cpu", "divisor": "1m"},
        )
        self.assertEqual(
            env["MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"], "limits.memory"
        )

    def test_fetched_policies_are_cached_on_a_writable_volume(self):
        objs = objects(render(with_required()))
        c = container(objs)
        env = {e["name"]: e.get("value") for e in c["env"]}
        self.assertEqual((env["POLICY_FETCH_MAX_BYTES"], env["POLICY_FETCH_TIMEOUT"]), ("67108864", "2m"))
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        self.assertIn(env["POLICY_CACHE_DIR"], mounts, "the cache directory is a volume")
        volumes = {v["name"]: v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes[mounts[env["POLICY_CACHE_DIR"]]].get("emptyDir"), {})
        full = container(objects(render(full_values())))
        self.assertEqual({m["mountPath"] for m in full["volumeMounts"]},
                         {"/tmp", "/var/cache/dovetail/policies"}, "the user's mounts come beside it")

    def test_the_chart_sets_only_variables_the_controller_reads(self):
        read = set(re.findall(r'env = "([A-Z_]+)"', rust_source("host/dovetail/src/settings.rs")))
        self.assertIn("CLUSTER_NAME", read, "settings.rs's variables could not be read")
        for values in (with_required(), full_values()):
            env = container(objects(render(values)))["env"]
            extra = {e["name"] for e in values.get("controller", {}).get("env", [])}
            emitted = {e["name"] for e in env} - extra
            self.assertEqual(emitted - read, set(),
                             "the chart sets variables `dovetail controller` does not read")

    def test_the_probes_and_ports_are_the_controllers(self):
        routes = set(re.findall(r'\.route\("(/[a-z]+)"', rust_source("host/dovetail/src/serve.rs")))
        objs = objects(render(with_required()))
        c = container(objs)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports, {"http-metrics": 8080, "http": 8081})
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            self.assertEqual(c[probe]["httpGet"], {"path": path, "port": "http"})
            self.assertIn(path, routes, f"{path} is not served by host/dovetail/src/serve.rs")
        self.assertIn("/metrics", routes)
        service_port = one(objs, "Service")["spec"]["ports"]
        self.assertEqual(service_port, [{"name": "http-metrics", "port": 8080,
                                         "targetPort": "http-metrics", "protocol": "TCP"}])

    def test_the_full_example_sets_every_value(self):
        chart = helm.Chart.load(CHART)
        schema, defaults, full = chart.schema, chart.values, full_values()

        def missing(schema_node, default, given, path):
            props = schema_node.get("properties", {})
            # A policy is given inline or by url, never both: the way not
            # taken may be left out.
            unused = set()
            if "component" in props and "url" in props:
                unused = {"url", "sha256"} if given.get("component") else {"component"}
            for key, node in props.items():
                here = f"{path}{key}"
                if key in unused and not given.get(key):
                    continue
                if key not in given:
                    yield here
                elif "properties" in node and isinstance(default.get(key), dict):
                    yield from missing(node, default[key], given[key] or {}, here + ".")
                elif given[key] == default.get(key) and key not in FIXED_BY_DESIGN:
                    yield f"{here} (left at its default)"

        # Feature gates Dovetail runs at one value, a ServiceAccount the
        # example still wants made, and the AWS provider (the fake cloud's
        # render is checked on its own).
        FIXED_BY_DESIGN = {
            "reservedCapacity", "nodeRepair", "nodeOverlay", "staticCapacity", "capacityBuffer",
            "create", "cloudProvider",
        }
        self.assertEqual(list(missing(schema, defaults, full, "")), [], f"{FULL_VALUES} must set every value")
        ways = {("url" if p.get("url") else "component") for d in full["policies"].values()
                for p in (d, d["shadow"])}
        self.assertEqual(ways, {"url", "component"}, "the example gives policies both ways")

    def test_the_full_example_renders_every_optional_object(self):
        objs = objects(render(full_values(), namespace="karpenter"))
        one(objs, "ServiceMonitor")
        self.assertEqual(len([o for o in objs if o["kind"] == "ConfigMap"]), 4)
        deployment = one(objs, "Deployment", "dovetail-prod")
        self.assertEqual(deployment["spec"]["replicas"], 3)
        self.assertEqual(
            container(objs)["image"],
            "111122223333.dkr.ecr.us-east-1.amazonaws.com/dovetail@sha256:" + "0" * 64,
            "a digest pins the image",
        )
        sa = one(objs, "ServiceAccount", "dovetail-controller")
        self.assertEqual(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                         "arn:aws:iam::111122223333:role/DovetailController-prod")
        env = {k: e.get("value") for k, e in env_of(objs).items()}
        self.assertEqual(env["INTERRUPTION_QUEUE"], "prod-interruptions")
        self.assertEqual(env["SERVICE_CIDR"], "172.20.0.0/16")
        self.assertEqual(env["ISOLATED_VPC"], "true")
        self.assertIn("SpotToSpotConsolidation=true", env["FEATURE_GATES"])
        self.assertEqual(env["KUBE_CLIENT_QPS"], "100", "controller.env is appended")
        self.assertNotIn("dovetail-prod-kubernetes-service", [o["metadata"]["name"] for o in objs],
                         "with serviceCIDR set the kubernetes Service is not read")

    def test_notes_say_how_to_check_the_controller(self):
        notes = render(with_required())["dovetail/templates/NOTES.txt"]
        for needle in ("kubectl get pods -n kube-system", "kubectl logs -n kube-system",
                       "dovetail-leader-election", "/metrics", "kind: NodePool", "kind: EC2NodeClass",
                       "settings.interruptionQueue"):
            self.assertIn(needle, notes)


class Lint(unittest.TestCase):
    def test_helm_lint_strict_passes(self):
        for values in (with_required(), full_values()):
            report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
            problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
            self.assertEqual(problems, [], "helm lint --strict")


class Validates(unittest.TestCase):
    def test_every_manifest_validates_against_its_kubernetes_schema(self):
        for label, values in (("default", with_required()), ("full", full_values()),
                              ("fake cloud", with_required({"settings": {"cloudProvider": "fake"}}))):
            docs = objects(render(values)) + crd_objects()
            for version in KUBE_VERSIONS:
                no_schema = []
                for doc in docs:
                    what = f"{label}: {doc['kind']} {doc['metadata']['name']} on Kubernetes {version}"
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except kv.SchemaNotFoundError:
                        no_schema.append(doc)
                    except kv.ValidationError as e:
                        self.fail(f"{what}: {'.'.join(map(str, e.path))}: {e.message}")
                # Only the Prometheus Operator's kind is unknown to Kubernetes'
                # schemas; it is checked against its own fields instead.
                self.assertEqual({d["kind"] for d in no_schema} - {"ServiceMonitor"}, set(), label)
                for doc in no_schema:
                    jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)

    def test_the_validator_refuses_what_kubernetes_would(self):
        deployment = one(objects(render(with_required())), "Deployment")
        typo = copy.deepcopy(deployment)
        typo["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
        with self.assertRaises(kv.ValidationError):
            kubernetes_validate.validate(typo, KUBE_VERSIONS[0], strict=True)
        wrong = copy.deepcopy(deployment)
        wrong["spec"]["replicas"] = "two"
        with self.assertRaises(kv.ValidationError):
            kubernetes_validate.validate(wrong, KUBE_VERSIONS[0], strict=True)

    def test_the_servicemonitor_selects_the_metrics_service(self):
        objs = objects(render(full_values(), namespace="karpenter"))
        monitor, service = one(objs, "ServiceMonitor"), one(objs, "Service")
        labels = service["metadata"]["labels"]
        for key, value in monitor["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(monitor["spec"]["namespaceSelector"]["matchNames"], [service["metadata"]["namespace"]])
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"])
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        broken = copy.deepcopy(monitor)
        broken["spec"]["endpoints"][0]["prot"] = "http-metrics"
        with self.assertRaises(jsonschema.ValidationError):
            jsonschema.validate(broken, SERVICE_MONITOR_SCHEMA)


class PodSecurity(unittest.TestCase):
    def template(self, values):
        return one(objects(render(values)), "Deployment")["spec"]["template"]

    def test_the_pod_meets_the_restricted_standard(self):
        for values in (with_required(), full_values()):
            self.assertEqual(restricted_violations(self.template(values)), [])
        c = container(objects(render(with_required())))["securityContext"]
        self.assertEqual((c["runAsUser"], c["runAsGroup"], c["readOnlyRootFilesystem"]), (65532, 65532, True))

    def test_each_restricted_rule_is_checked(self):
        base = self.template(with_required())

        def ctr(t):
            return t["spec"]["containers"][0]

        def csc(t):
            return ctr(t)["securityContext"]

        mutations = {
            "hostProcess": lambda t: csc(t).update(windowsOptions={"hostProcess": True}),
            "hostNetwork": lambda t: t["spec"].update(hostNetwork=True),
            "hostPID": lambda t: t["spec"].update(hostPID=True),
            "hostIPC": lambda t: t["spec"].update(hostIPC=True),
            "privileged": lambda t: csc(t).update(privileged=True),
            "hostPort": lambda t: ctr(t)["ports"][0].update(hostPort=8080),
            "procMount": lambda t: csc(t).update(procMount="Unmasked"),
            "hostPath": lambda t: t["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            "appArmorProfile": lambda t: csc(t).update(appArmorProfile={"type": "Unconfined"}),
            "annotation": lambda t: t["metadata"].update(
                annotations={"container.apparmor.security.beta.kubernetes.io/controller": "unconfined"}),
            "seLinuxOptions.type": lambda t: csc(t).update(seLinuxOptions={"type": "spc_t"}),
            "seLinuxOptions.user/role": lambda t: csc(t).update(seLinuxOptions={"user": "root"}),
            "sysctl": lambda t: t["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
            "type nfs": lambda t: t["spec"].update(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
            "allowPrivilegeEscalation": lambda t: csc(t).pop("allowPrivilegeEscalation"),
            "runAsNonRoot": lambda t: csc(t).update(runAsNonRoot=False),
            "runAsUser 0": lambda t: csc(t).update(runAsUser=0),
            "seccompProfile Unconfined": lambda t: csc(t).update(seccompProfile={"type": "Unconfined"}),
            "seccompProfile not": lambda t: (csc(t).pop("seccompProfile"), t["spec"]["securityContext"].pop("seccompProfile")),
            "do not drop ALL": lambda t: csc(t).update(capabilities={"drop": ["NET_RAW"]}),
            "adds capability NET_ADMIN": lambda t: csc(t)["capabilities"].update(add=["NET_ADMIN"]),
        }
        for rule, mutate in mutations.items():
            t = copy.deepcopy(base)
            mutate(t)
            found = restricted_violations(t)
            self.assertTrue(any(rule in v for v in found), f"{rule}: not caught ({found})")
        t = copy.deepcopy(base)
        t["spec"]["securityContext"].pop("runAsNonRoot")
        csc(t).pop("runAsNonRoot")
        self.assertIn("containers[controller]: runAsNonRoot not true", restricted_violations(t))


class Rbac(unittest.TestCase):
    def roles(self, values):
        return [o for o in objects(render(values)) if o["kind"] in ("Role", "ClusterRole")]

    def test_no_rule_names_a_wildcard(self):
        for values in (with_required(), full_values(), with_required({"settings": {"cloudProvider": "fake"}})):
            for role in self.roles(values):
                for rule in role["rules"]:
                    for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                        for item in rule.get(field, []):
                            self.assertNotIn("*", item, f"{role['kind']} {role['metadata']['name']}: {rule}")

    def test_the_lease_rules_name_the_lease_the_controller_elects_on(self):
        objs = objects(render(with_required(), namespace="karpenter"))
        lease = env_of(objs)["LEADER_ELECTION_NAME"]["value"]
        role = one(objs, "Role", "dovetail")
        self.assertEqual(role["metadata"]["namespace"], "karpenter", "the Lease is in the controller's namespace")
        named = [r for r in role["rules"] if r.get("resources") == ["leases"] and "resourceNames" in r]
        self.assertEqual(named, [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                  "resourceNames": [lease], "verbs": ["get", "update"]}])
        binding = one(objs, "RoleBinding", "dovetail")
        sa = one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": sa, "namespace": "karpenter"}])
        for name in ("dovetail", "dovetail-core"):
            self.assertEqual(one(objs, "ClusterRoleBinding", name)["subjects"],
                             [{"kind": "ServiceAccount", "name": sa, "namespace": "karpenter"}])

    def test_cloud_specific_rules_follow_the_settings(self):
        def rules(values, name):
            return one(objects(render(values)), "ClusterRole", name)["rules"]

        aws = rules(with_required(), "dovetail")
        self.assertIn({"apiGroups": ["karpenter.k8s.aws"], "resources": ["ec2nodeclasses/status"],
                       "verbs": ["patch"]}, aws)
        fake = rules(with_required({"settings": {"cloudProvider": "fake"}}), "dovetail")
        self.assertNotIn("ec2nodeclasses/status", json.dumps(fake), "the fake cloud writes no class status")
        # The fake cloud stands in for EC2, outside the Kubernetes API: no rule.
        self.assertEqual([r for r in fake if "nonResourceURLs" in r], [])
        names = [o["metadata"]["name"] for o in objects(render(with_required({"settings": {"cloudProvider": "fake"}})))]
        self.assertNotIn("dovetail-kubernetes-service", names, "only the AWS provider reads the kubernetes Service")
        service_role = one(objects(render(with_required())), "Role", "dovetail-kubernetes-service")
        self.assertEqual(service_role["metadata"]["namespace"], "default")
        self.assertEqual(service_role["rules"], [{"apiGroups": [""], "resources": ["services"],
                                                  "resourceNames": ["kubernetes"], "verbs": ["get"]}])
        extra = rules(full_values(), "dovetail-prod-core")[-1]
        self.assertEqual(extra, {"apiGroups": [""], "resources": ["persistentvolumes"],
                                 "verbs": ["get", "list", "watch"]}, "additionalClusterRoleRules are appended")

    def test_admins_can_manage_nodepools_and_nodeclasses(self):
        admin = one(objects(render(with_required())), "ClusterRole", "dovetail-admin")
        self.assertEqual(admin["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"], "true")
        resources = {r for rule in admin["rules"] for r in rule["resources"]}
        self.assertEqual(resources, {"nodepools", "nodepools/status", "nodeclaims", "nodeclaims/status",
                                     "ec2nodeclasses"})


class Policies(unittest.TestCase):
    def test_a_policy_in_values_becomes_a_labelled_configmap_holding_it(self):
        label = re.search(r'POLICY_LABEL: &str = "([^"]+)"', rust_source("host/kube/src/policy_configmaps.rs"))[1]
        mode = re.search(r'MODE_LABEL: &str = "([^"]+)"', rust_source("host/kube/src/policy_configmaps.rs"))[1]
        component = b"\0asm\x0d\0\x01\0" + bytes(range(256)) * 4
        shadow = b"\0asm\x0d\0\x01\0shadow"
        # As `base64` prints it by default: lines of 76 characters.
        wrapped = "\n".join(re.findall(".{1,76}", base64.b64encode(component).decode())) + "\n"
        values = with_required({"policies": {"consolidationScoring": {
            "component": wrapped,
            "config": {"min-savings-percent": 20},
            "shadow": {"component": base64.b64encode(shadow).decode(), "config": '{"k": 2}'},
        }}})
        maps = [o for o in objects(render(values, namespace="karpenter")) if o["kind"] == "ConfigMap"]
        self.assertEqual(len(maps), 2, "one live and one shadow, nothing for the empty instance-selection")
        live = one(maps, "ConfigMap", "dovetail-consolidation-scoring")
        self.assertEqual(live["metadata"]["namespace"], "karpenter", "where the controller watches")
        self.assertEqual(live["metadata"]["labels"][label], "consolidation-scoring")
        self.assertNotIn(mode, live["metadata"]["labels"])
        self.assertEqual(base64.b64decode(live["binaryData"]["consolidation-scoring.wasm"]), component)
        self.assertEqual(json.loads(live["data"]["consolidation-scoring.json"]), {"min-savings-percent": 20})
        s = one(maps, "ConfigMap", "dovetail-consolidation-scoring-shadow")
        self.assertEqual(s["metadata"]["labels"][label], "consolidation-scoring")
        self.assertEqual(s["metadata"]["labels"][mode], "shadow")
        self.assertEqual(base64.b64decode(s["binaryData"]["consolidation-scoring.wasm"]), shadow)
        self.assertEqual(json.loads(s["data"]["consolidation-scoring.json"]), {"k": 2})

    def test_a_policy_named_by_url_becomes_a_configmap_the_controller_fetches(self):
        label = re.search(r'POLICY_LABEL: &str = "([^"]+)"', rust_source("host/kube/src/policy_configmaps.rs"))[1]
        digest = "ab" * 32
        values = with_required({"policies": {"instanceSelection": {
            "url": "oci://ghcr.io/acme/cheapest-spot:1.2",
            "sha256": digest,
            "config": {"spot-only": True},
            "shadow": {"url": "https://policies.example.com/next.wasm", "sha256": digest},
        }}})
        maps = [o for o in objects(render(values)) if o["kind"] == "ConfigMap"]
        live = one(maps, "ConfigMap", "dovetail-instance-selection")
        self.assertEqual(live["metadata"]["labels"][label], "instance-selection")
        self.assertNotIn("binaryData", live, "the component is fetched, not held")
        self.assertEqual(live["data"], {
            "instance-selection.url": "oci://ghcr.io/acme/cheapest-spot:1.2",
            "instance-selection.sha256": digest,
            "instance-selection.json": '{"spot-only":true}',
        })
        shadow = one(maps, "ConfigMap", "dovetail-instance-selection-shadow")
        self.assertEqual(shadow["data"], {
            "instance-selection.url": "https://policies.example.com/next.wasm",
            "instance-selection.sha256": digest,
        })
        for o in maps:
            kubernetes_validate.validate(o, KUBE_VERSIONS[-1], strict=True)

    def test_no_component_no_configmap(self):
        values = with_required({"policies": {"instanceSelection": {"config": {"ignored": True}}}})
        self.assertEqual([o for o in objects(render(values)) if o["kind"] == "ConfigMap"], [])


class Refused(unittest.TestCase):
    def refused(self, values):
        with self.assertRaises((helm.HelmValuesError, helm.HelmRenderError)) as caught:
            render(values)
        return str(caught.exception)

    def test_a_typo_names_the_key(self):
        e = self.refused(with_required({"replica": 3}))
        self.assertIn("'replica' not allowed", e)
        e = self.refused(with_required({"settings": {"clusterNmae": "prod"}}))
        self.assertIn("/settings", e)
        self.assertIn("'clusterNmae' not allowed", e)
        e = self.refused(with_required({"policies": {"instanceSelection": {"shadow": {"componet": "x"}}}}))
        self.assertIn("/policies/instanceSelection/shadow", e)
        self.assertIn("'componet' not allowed", e)

    def test_a_wrong_type_names_the_key(self):
        for values, key in (
            ({"replicas": "two"}, "/replicas"),
            ({"settings": {"isolatedVPC": "yes"}}, "/settings/isolatedVPC"),
            ({"settings": {"batchIdleDuration": "1"}}, "/settings/batchIdleDuration"),
            ({"settings": {"vmMemoryOverheadPercent": 7.5}}, "/settings/vmMemoryOverheadPercent"),
            ({"settings": {"cloudProvider": "gcp"}}, "/settings/cloudProvider"),
            ({"settings": {"featureGates": {"nodeRepair": True}}}, "/settings/featureGates/nodeRepair"),
            ({"controller": {"metrics": {"port": "8080"}}}, "/controller/metrics/port"),
        ):
            self.assertIn(f"at '{key}'", self.refused(with_required(values)))

    def test_missing_required_settings_name_the_setting(self):
        e = self.refused({"settings": {"clusterEndpoint": "https://x.example"}})
        self.assertIn("settings.clusterName is required", e)
        e = self.refused({"settings": {"clusterName": "prod"}})
        self.assertIn("settings.clusterEndpoint is required with settings.cloudProvider=aws", e)
        # The fake cloud needs no endpoint.
        render({"settings": {"clusterName": "prod", "cloudProvider": "fake"}})

    def test_a_policy_that_is_not_a_base64_component_is_refused(self):
        e = self.refused(with_required({"policies": {"instanceSelection": {"component": "aGVsbG8="}}}))
        self.assertIn("policies.instanceSelection.component is not a base64 Wasm component", e)
        e = self.refused(with_required({"policies": {"consolidationScoring": {
            "component": "AGFzbQ0AAQA=", "config": "min-savings-percent=20"}}}))
        self.assertIn("policies.consolidationScoring.config is not a JSON object", e)

    def test_a_policy_url_needs_its_digest_and_excludes_a_component(self):
        digest = "ab" * 32
        for policy, message in (
            ({"url": "https://x.example/p.wasm"},
             "policies.instanceSelection.url needs policies.instanceSelection.sha256"),
            ({"sha256": digest},
             "policies.instanceSelection.sha256 pins a component fetched from policies.instanceSelection.url"),
            ({"url": "https://x.example/p.wasm", "sha256": digest, "component": "AGFzbQ0AAQA="},
             "policies.instanceSelection has both a component and a url"),
        ):
            self.assertIn(message, self.refused(with_required({"policies": {"instanceSelection": policy}})))
        e = self.refused(with_required({"policies": {"consolidationScoring": {"shadow": {
            "url": "s3://bucket/p.wasm", "sha256": digest}}}}))
        self.assertIn("/policies/consolidationScoring/shadow/url", e)
        e = self.refused(with_required({"policies": {"consolidationScoring": {
            "url": "https://x.example/p.wasm", "sha256": "sha256:" + digest}}}))
        self.assertIn("/policies/consolidationScoring/sha256", e)


class Golden(unittest.TestCase):
    def test_the_default_render_matches_the_golden_file(self):
        text = golden_text(render(with_required()))
        if os.environ.get("DOVETAIL_BLESS"):
            GOLDEN.parent.mkdir(parents=True, exist_ok=True)
            GOLDEN.write_text(text)
        if not GOLDEN.exists():
            self.fail(f"{GOLDEN.relative_to(ROOT)} is missing; write it: DOVETAIL_BLESS=1 tests/chart/run")
        want = GOLDEN.read_text()
        if text != want:
            diff = "".join(list(difflib.unified_diff(
                want.splitlines(True), text.splitlines(True), "golden/default.yaml", "render"))[:80])
            self.fail(
                f"the default render differs from {GOLDEN.relative_to(ROOT)}; if the change is meant, "
                f"regenerate it with DOVETAIL_BLESS=1 tests/chart/run and review the diff:\n{diff}"
            )


if __name__ == "__main__":
    unittest.main()
