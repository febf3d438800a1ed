#!/usr/bin/env bash
# deploy/ and debian/ checked without systemd, a registry or a Kubernetes cluster (issue 12,
# scope 6). What is checked here and what is not: docs/deploy.md (each section says).
# - the unit: Type=notify, the hardening options, ExecReload, the optional secrets file; passes
#   `systemd-analyze verify` with ExecStart pointed at the built binary (when systemd-analyze is
#   installed);
# - the secrets examples give CAIRN_MASTER_KEY; the packaged config and the cluster example pass
#   `cairn server --check-config`;
# - Kubernetes: every YAML document under deploy/k8s parses (python3-yaml); each workload mounts
#   only volumes it declares, probes /health/live and /health/ready, takes CAIRN_MASTER_KEY and
#   the credentials from a Secret key that exists; the StatefulSets spread over
#   topology.kubernetes.io/zone and name a headless Service; the single-node Deployment recreates;
# - the Containerfile: its runtime stage installs a Debian package for every shared library
#   `ldd cairn` lists (dpkg -S), its build stage the -dev packages of scripts/setup.sh, a non-root
#   USER, VOLUME, EXPOSE; its HEALTHCHECK command run against a real server: 0 when ready, not 0
#   when nothing listens;
# - debian/: the files dh needs exist, control parses and its Build-Depends are setup.sh's
#   packages, the changelog parses, the unit is the same file as deploy/'s, rules is executable.
source "$(dirname "$0")/lib.sh"

h_own_server "it checks files and starts its own server"
h_need curl
R=$H_ROOT

# ---- systemd unit ----
UNIT=$R/deploy/systemd/cairn.service
for want in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'EnvironmentFile=-/etc/cairn/cairn.env' 'ExecStart=/usr/bin/cairn server --config /etc/cairn/cairn.conf' \
    'ProtectSystem=strict' 'ReadWritePaths=/var/lib/cairn' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
    'CapabilityBoundingSet=' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'SystemCallFilter=@system-service' 'PrivateDevices=yes' 'ProtectHome=yes'; do
    if grep -qxF -- "$want" "$UNIT"; then h_ok "unit: $want"; else h_bad "unit: $want"; fi
done
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$H_WORK/unit"
    sed "s|/usr/bin/cairn|$CAIRN_BIN|" "$UNIT" >"$H_WORK/unit/cairn.service"
    if out=$(systemd-analyze verify "$H_WORK/unit/cairn.service" 2>&1) && [ -z "$out" ]; then
        h_ok "unit passes systemd-analyze verify"
    else
        h_bad "unit passes systemd-analyze verify" "$out"
    fi
else
    echo "note - systemd-analyze not installed: the unit is not verified"
fi

# ---- secrets and configurations ----
if grep -q '^CAIRN_MASTER_KEY=' "$R/deploy/systemd/cairn.env.example"; then
    h_ok "cairn.env.example sets CAIRN_MASTER_KEY"
else
    h_bad "cairn.env.example sets CAIRN_MASTER_KEY"
fi
h_run "the packaged cairn.conf passes --check-config" \
    "$CAIRN_BIN" server --config "$R/debian/cairn.conf" --check-config
h_run "the cluster example passes --check-config" env CAIRN_RPC_SECRET=0123456789abcdef0123 \
    "$CAIRN_BIN" server --config "$R/deploy/systemd/cairn.conf.example" --check-config

# ---- Kubernetes manifests ----
"$H_PY" - "$R/deploy/k8s" >"$H_WORK/k8s.out" 2>&1 <<'PY'
import glob, os, sys
import yaml
root = sys.argv[1]
docs = []
for path in sorted(glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True)):
    try:
        for d in yaml.safe_load_all(open(path)):
            if d:
                docs.append((os.path.relpath(path, root), d))
        print("ok parses %s" % os.path.relpath(path, root))
    except yaml.YAMLError as e:
        print("bad parses %s %s" % (path, str(e).replace("\n", " ")))
secrets = {(d["metadata"]["namespace"], d["metadata"]["name"]):
           set(d.get("stringData", {})) | set(d.get("data", {}))
           for _, d in docs if d.get("kind") == "Secret"}
headless = {(d["metadata"]["namespace"], d["metadata"]["name"]) for _, d in docs
            if d.get("kind") == "Service" and d["spec"].get("clusterIP") == "None"}
def check(ok, what):
    print("%s %s" % ("ok" if ok else "bad", what))
for f, d in docs:
    if d.get("kind") not in ("StatefulSet", "Deployment"):
        continue
    ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
    tag = "%s %s/%s" % (f, d["kind"], name)
    spec = d["spec"]["template"]["spec"]
    vols = {v["name"] for v in spec.get("volumes", [])}
    vols |= {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
    for c in spec.get("initContainers", []) + spec["containers"]:
        for m in c.get("volumeMounts", []):
            check(m["name"] in vols, "%s: %s mounts declared volume %s" % (tag, c["name"], m["name"]))
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                check(ref["key"] in secrets.get((ns, ref["name"]), set()),
                      "%s: %s from secret %s key %s" % (tag, e["name"], ref["name"], ref["key"]))
    if d["metadata"].get("labels", {}).get("app") == "etcd" or name == "etcd":
        continue
    c = spec["containers"][0]
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/health/live",
          "%s: liveness probe on /health/live" % tag)
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health/ready",
          "%s: readiness probe on /health/ready" % tag)
    env = {e["name"]: e for e in c.get("env", [])}
    for var in ("CAIRN_ACCESS_KEY", "CAIRN_SECRET_KEY", "CAIRN_MASTER_KEY"):
        check("secretKeyRef" in env.get(var, {}).get("valueFrom", {}), "%s: %s from a Secret" % (tag, var))
    check(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
          "%s: no privilege escalation" % tag)
    if d["kind"] == "StatefulSet":
        keys = [t["topologyKey"] for t in spec.get("topologySpreadConstraints", [])]
        check("topology.kubernetes.io/zone" in keys, "%s: spread over zones" % tag)
        check((ns, d["spec"]["serviceName"]) in headless, "%s: headless service %s" % (tag, d["spec"]["serviceName"]))
    else:
        check(d["spec"].get("replicas") == 1 and d["spec"].get("strategy", {}).get("type") == "Recreate",
              "%s: one replica, recreated (one writer per volume)" % tag)
print("workloads %d" % sum(1 for _, d in docs if d.get("kind") in ("StatefulSet", "Deployment")))
PY
while read -r verdict what; do
    case $verdict in
    ok) h_ok "k8s: $what" ;;
    bad) h_bad "k8s: $what" ;;
    workloads) [ "$what" -ge 5 ] && h_ok "k8s: $what workloads checked" || h_bad "k8s: workloads found" "$what" ;;
    *) h_bad "k8s check ran" "$verdict $what" ;;
    esac
done <"$H_WORK/k8s.out"

# ---- Containerfile ----
CF=$R/deploy/Containerfile
runtime=$(awk '/^FROM /{n++} n==2' "$CF")
build=$(awk '/^FROM /{n++} n==1' "$CF")
for lib in $(ldd "$CAIRN_BIN" | awk '$3 ~ /^\// {print $3}'); do
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | cut -d: -f1 | head -1)
    case $pkg in
    libc6 | libgcc-s1 | libstdc++6 | libicu72 | zlib1g | liblzma5) continue ;; # in the base image, or a dependency of libxml2
    libasan* | libubsan* | libclang-rt*) continue ;; # the sanitizer build's runtime (CI's second pass), not the release's
    esac
    if grep -qw -- "$pkg" <<<"$runtime"; then
        h_ok "Containerfile runtime installs $pkg ($(basename "$lib"))"
    else
        h_bad "Containerfile runtime installs $pkg ($(basename "$lib"))"
    fi
done
for pkg in $(sed -n '/^LIB_PKGS=(/,/)/p' "$R/scripts/setup.sh" | tr -d '()' | sed 's/LIB_PKGS=//'); do
    if grep -qw -- "$pkg" <<<"$build"; then h_ok "Containerfile build installs $pkg"; else h_bad "Containerfile build installs $pkg"; fi
done
if grep -q -- "-dev" <<<"$runtime"; then h_bad "no -dev package in the runtime stage"; else h_ok "no -dev package in the runtime stage"; fi
for want in '^USER cairn' '^VOLUME \["/var/lib/cairn"\]' '^EXPOSE 9000' '^HEALTHCHECK ' '^FROM debian:12'; do
    if grep -Eq -- "$want" "$CF"; then h_ok "Containerfile: $want"; else h_bad "Containerfile: $want"; fi
done
# the HEALTHCHECK's command, run against a real server on 9000's stand-in port
"$H_PY" - "$CF" >"$H_WORK/hc.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
print(json.dumps(json.loads(m.group(1))) if m else "")
PY
h_start
hc_run() { # hc_run PORT: the HEALTHCHECK command with its port replaced
    "$H_PY" -c 'import json,subprocess,sys; a=json.load(open(sys.argv[1])); a=[x.replace("/9000", "/"+sys.argv[2]) for x in a]; sys.exit(subprocess.run(a, timeout=5).returncode)' \
        "$H_WORK/hc.json" "$1"
}
if hc_run "$H_PORT"; then h_ok "HEALTHCHECK succeeds on a ready server"; else h_bad "HEALTHCHECK succeeds on a ready server" "$(cat "$H_WORK/hc.json")"; fi
if hc_run "$(h_free_port)" 2>/dev/null; then h_bad "HEALTHCHECK fails where nothing listens"; else h_ok "HEALTHCHECK fails where nothing listens"; fi

# ---- debian/ ----
for f in control changelog rules copyright source/format cairn.service cairn.postinst cairn.install cairn.conf; do
    if [ -e "$R/debian/$f" ]; then h_ok "debian/$f exists"; else h_bad "debian/$f exists"; fi
done
[ -x "$R/debian/rules" ] && h_ok "debian/rules is executable" || h_bad "debian/rules is executable"
if [ "$(readlink -f "$R/debian/cairn.service")" = "$(readlink -f "$UNIT")" ]; then
    h_ok "debian/cairn.service is deploy/systemd/cairn.service"
else
    h_bad "debian/cairn.service is deploy/systemd/cairn.service"
fi
if command -v dpkg-parsechangelog >/dev/null 2>&1; then
    h_run "debian/changelog parses" dpkg-parsechangelog -l "$R/debian/changelog" -S Version
fi
"$H_PY" - "$R/debian/control" "$R/scripts/setup.sh" >"$H_WORK/control.out" <<'PY'
import re, sys
paras, cur = [], {}
key = None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line.strip():
        if cur: paras.append(cur); cur = {}
        continue
    if line[0] in " \t":
        cur[key] += " " + line.strip()
    else:
        key, _, val = line.partition(":")
        cur[key] = val.strip()
if cur: paras.append(cur)
print("%s control has a source and a binary paragraph" % ("ok" if len(paras) == 2 and "Source" in paras[0] and paras[1].get("Package") == "cairn" else "bad"))
bd = {re.split(r"[\s(]", d.strip())[0] for d in paras[0].get("Build-Depends", "").split(",") if d.strip()}
setup = open(sys.argv[2]).read()
listed = set()
for name in ("BUILD_PKGS", "LIB_PKGS"):
    m = re.search(name + r"=\((.*?)\)", setup, re.S)
    listed |= set(m.group(1).split())
for d in sorted(bd - {"debhelper-compat"}):
    print("%s Build-Depends %s is one of setup.sh's packages" % ("ok" if d in listed else "bad", d))
m = re.search(r"LIB_PKGS=\((.*?)\)", setup, re.S)
for p in m.group(1).split():
    print("%s Build-Depends has %s (setup.sh LIB_PKGS)" % ("ok" if p in bd else "bad", p))
dep = paras[1].get("Depends", "") if len(paras) > 1 else ""
print("%s Depends has ${shlibs:Depends} and adduser" % ("ok" if "${shlibs:Depends}" in dep and "adduser" in dep else "bad"))
PY
while read -r verdict what; do
    case $verdict in
    ok) h_ok "debian: $what" ;;
    *) h_bad "debian: $what" ;;
    esac
done <"$H_WORK/control.out"
h_finish
