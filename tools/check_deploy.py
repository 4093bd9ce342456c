#!/usr/bin/python3
"""Checks the deployment files under deploy/ without Docker or Kubernetes.

  tools/check_deploy.py [--root REPO] [--metrics SCRAPE.txt] [--allow-missing-promtool]
  tools/check_deploy.py --serve build/server/quantserve --client build/tools/client/quantserve-client

1. Every *.yaml, *.yml and *.json under deploy/ parses (duplicate keys are
   errors: YAML parsers silently keep one of them, Kubernetes and compose
   then do something unexpected).
2. Every metric named in a PromQL expression (alert/recording rules, rule
   unit tests, Grafana panels and variables) is defined in
   server/metric_names.h, with histogram suffixes used only on histograms,
   and every recording rule referenced is recorded.
3. With --metrics, every such metric also appears in that /metrics scrape;
   with --serve, in a scrape of a server started here (a small two-variant
   config with mirror-mode drift, after some quantserve-client traffic).
4. promtool: check config, check rules, test rules, and a syntax check of the
   dashboard's queries. Missing promtool is an error unless
   --allow-missing-promtool.
5. Kubernetes: probes, security context, grace periods, Service/HPA/PDB
   selectors and the embedded server config (deploy/k8s).
6. compose: mounted files exist, --set overrides name real models, and the
   Prometheus/Grafana wiring lines up (deploy/compose.yaml).

Exit status 0 when everything passes, 1 otherwise; every failure is printed
with the file it concerns. Needs only python3 and python3-yaml.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

# Start-up quantizes every variant; the startup probe must allow at least this.
MIN_STARTUP_SECONDS = 300
CONTAINER_CONFIG_DIR = "/opt/quantserve/config"
# Dockerfile: COPY models/ models/ with WORKDIR /opt/quantserve.
IMAGE_MODELS_DIR = "/opt/quantserve/models/"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SUMMARY_SUFFIXES = ("_sum", "_count")

METRIC_RE = re.compile(r"\b(?:quantserve_[a-z0-9_]+|process_[a-z_]+)\b")
# Recording-rule names contain a colon (quantserve:drift_samples:increase10m).
RECORDED_RE = re.compile(r"(?<![\w:])[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*[a-zA-Z0-9_]\b")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GRAFANA_VAR_RE = re.compile(r"\$\{[^}]*\}|\$\w+")


class Report:
    def __init__(self):
        self.errors = 0

    def fail(self, where, msg):
        self.errors += 1
        print(f"FAIL {where}: {msg}")

    def ok(self, msg):
        print(f"ok   {msg}")

    def note(self, msg):
        print(f"note {msg}")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_all(text):
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]


# ---------------------------------------------------------------- 1. parsing

def parse_deploy_files(root, rep):
    """Returns {relative path: [documents]} for every file that parsed."""
    parsed = {}
    deploy = os.path.join(root, "deploy")
    if not os.path.isdir(deploy):
        rep.fail("deploy/", "directory missing")
        return parsed
    for dirpath, _, files in os.walk(deploy):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                if name.endswith(".json"):
                    docs = [json.loads(text)]
                elif name.endswith((".yaml", ".yml")):
                    docs = load_yaml_all(text)
                else:
                    continue
            except (OSError, ValueError, yaml.YAMLError) as e:
                rep.fail(rel, f"does not parse: {e}")
                continue
            if not docs:
                rep.fail(rel, "is empty")
                continue
            parsed[rel] = docs
    rep.ok(f"{len(parsed)} files under deploy/ parse")
    return parsed


# ---------------------------------------------------------------- 2. metric names

def defined_metrics(root, rep):
    path = os.path.join(root, "server", "metric_names.h")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        rep.fail("server/metric_names.h", str(e))
        return set()
    names = set(re.findall(r'=\s*"((?:quantserve|process)_[a-z0-9_]+)"', text))
    if not names:
        rep.fail("server/metric_names.h", "no metric name constants found")
    return names


def documented_types(root):
    """Metric types from the tables of docs/METRICS.md (may be incomplete)."""
    types = {}
    try:
        with open(os.path.join(root, "docs", "METRICS.md"), encoding="utf-8") as f:
            for line in f:
                m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|", line)
                if m:
                    types[m.group(1)] = m.group(2)
    except OSError:
        pass
    return types


def promql_names(expr):
    """(metric names, recording-rule names) referenced by a PromQL expression."""
    bare = GRAFANA_VAR_RE.sub("x", STRING_RE.sub('""', expr))
    return set(METRIC_RE.findall(bare)), set(RECORDED_RE.findall(bare))


def collect_rules(parsed, rule_paths):
    """[(where, rule dict)] for every rule of the given rule files."""
    rules = []
    for rel in rule_paths:
        for doc in parsed.get(rel, []):
            for group in (doc or {}).get("groups", []) or []:
                for rule in group.get("rules", []) or []:
                    name = rule.get("alert") or rule.get("record") or "?"
                    rules.append((f"{rel}: rule {name}", rule))
    return rules


def dashboard_queries(rel, dash):
    """[(where, expr, is_promql)] of a Grafana dashboard: panel targets and
    query variables (label_values(...) is Grafana's, not PromQL)."""
    out = []

    def walk(panels):
        for p in panels or []:
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append((f"{rel}: panel {p.get('id')} \"{p.get('title')}\" {t.get('refId')}",
                                t["expr"], True))
            walk(p.get("panels"))

    walk(dash.get("panels"))
    for var in (dash.get("templating") or {}).get("list", []) or []:
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if var.get("type") == "query" and isinstance(q, str):
            out.append((f"{rel}: variable ${var.get('name')}", q, False))
    return out


def check_metric_refs(refs, defined, types, recorded, rep):
    """refs: {metric or recorded name: [where]}."""
    bad = 0
    for name, wheres in sorted(refs.items()):
        where = wheres[0] + (f" (and {len(wheres) - 1} more)" if len(wheres) > 1 else "")
        if ":" in name:
            if name not in recorded:
                rep.fail(where, f"recording rule {name} is used but never recorded")
                bad += 1
            continue
        if name in defined:
            if types.get(name) in ("histogram", "summary"):
                rep.fail(where, f"{name} is a {types[name]}: query its _bucket/_sum/_count series")
                bad += 1
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base in defined:
            kind = types.get(base)
            suffix = name[len(base):]
            if kind in ("counter", "gauge") or (kind is None and base.endswith("_total")):
                rep.fail(where, f"{name}: {base} is a {kind or 'counter'}, it has no {suffix} series")
                bad += 1
            elif kind == "summary" and suffix == "_bucket":
                rep.fail(where, f"{name}: {base} is a summary, it has no _bucket series")
                bad += 1
            continue
        rep.fail(where, f"{name} is not defined in server/metric_names.h")
        bad += 1
    if not bad:
        rep.ok(f"{len(refs)} metric and recording-rule names in rules and dashboards are defined")


# ---------------------------------------------------------------- 3. scrape

def parse_scrape(path):
    """(families {name: type}, sample names) of a Prometheus text exposition."""
    families, samples = {}, set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4:
                    families[parts[2]] = parts[3]
            elif line and not line.startswith("#"):
                m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
                if m:
                    samples.add(m.group(0))
    return families, samples


def in_scrape(name, families, samples):
    if name in samples or families.get(name) in ("counter", "gauge", "untyped"):
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix):
            kind = families.get(base)
            return kind == "histogram" or (kind == "summary" and suffix in SUMMARY_SUFFIXES)
    return False


def check_scrape(path, refs, rep, label=None):
    try:
        families, samples = parse_scrape(path)
    except OSError as e:
        rep.fail(path, str(e))
        return
    if not families and not samples:
        rep.fail(path, "holds no metrics (is it a /metrics scrape?)")
        return
    label = label or f"the scrape {path}"
    missing = 0
    for name, wheres in sorted(refs.items()):
        if ":" in name or in_scrape(name, families, samples):
            continue
        rep.fail(wheres[0], f"{name} does not appear in {label}")
        missing += 1
    if not missing:
        rep.ok(f"every referenced metric appears in {label}")


# ---------------------------------------------------------------- 3b. live scrape

LIVE_CONFIG = """\
server:
  grpc_address: 127.0.0.1:0
  metrics_address: 127.0.0.1:0
models:
  - name: fmnist_cnn
    path: {model}
    evaluation: {{inputs: {data}/t10k-images-idx3-ubyte.gz, labels: {data}/t10k-labels-idx1-ubyte.gz, limit: 200}}
    calibration: {{inputs: {data}/train-images-idx3-ubyte.gz, limit: 100}}
    # Every request replayed on every variant, so all drift series exist.
    drift: {{sample_rate: 1.0, mode: mirror, reference: fp32}}
    variants:
      - name: fp32
      - name: w8a8
        weights: {{bits: 8}}
"""


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode("utf-8")


def serve_and_scrape(root, server_bin, client_bin, work, out_path, rep):
    """Starts a small server (config and log in the directory `work`), sends
    traffic, writes a /metrics scrape to out_path. Returns False (after
    reporting why) when that fails."""
    data = "/usr/share/datasets/fashion-mnist"
    cfg = os.path.join(work, "quantserve.yaml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(LIVE_CONFIG.format(model=os.path.join(root, "models", "fmnist_cnn.onnx"), data=data))
    log_path = os.path.join(work, "serve.log")

    def log_text():
        with open(log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    with open(log_path, "w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen([server_bin, "serve", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:
            rep.fail(server_bin, f"cannot start: {e}")
            return False
    try:
        # Port 0 picks free ports; the log says which. Ready = the server's
        # own probe succeeds (every variant built).
        grpc = metrics = None
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            text = log_text()
            g = re.search(r"gRPC listening on (\S+)", text)
            m = re.search(r"metrics on (http://\S+/metrics)", text)
            grpc, metrics = (g.group(1) if g else None), (m.group(1) if m else None)
            if grpc and metrics and subprocess.run(
                    [server_bin, "probe", "--address", grpc], capture_output=True).returncode == 0:
                break
            time.sleep(0.3)
        else:
            status = "timed out" if proc.poll() is None else f"exit status {proc.returncode}"
            rep.fail(server_bin, f"did not start serving ({status}):\n    "
                     + log_text()[-2000:].replace("\n", "\n    "))
            return False
        if client_bin:
            c = subprocess.run([client_bin, "--address", grpc, "--model", "fmnist_cnn", "--fashion-mnist",
                                "--count", "64", "--batch", "8", "--feedback", "--json"],
                               capture_output=True, text=True, timeout=120)
            if c.returncode != 0:
                rep.fail(client_bin, f"exit {c.returncode}: {c.stderr.strip()[-1000:]}")
                return False
        # Replays run off the request path: wait until they are counted.
        text = fetch(metrics)
        deadline = time.time() + 30
        while client_bin and time.time() < deadline and not re.search(
                r"^quantserve_drift_samples_total\{[^}]*\} [1-9]", text, re.M):
            time.sleep(0.5)
            text = fetch(metrics)
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    except (OSError, subprocess.TimeoutExpired) as e:
        rep.fail(server_bin, str(e))
        return False
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- 4. promtool

def run(cmd, rep, where):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        rep.fail(where, f"{' '.join(cmd[:3])} failed:\n    " + out.replace("\n", "\n    "))
        return False
    return True


def check_promtool(root, prom_config, rule_files, test_files, dash_exprs, rep, allow_missing):
    promtool = shutil.which("promtool")
    if not promtool:
        if allow_missing:
            rep.note("promtool not found: rules, config and query syntax not checked by it")
        else:
            rep.fail("promtool", "not found on PATH (Debian: apt-get install prometheus); "
                                 "pass --allow-missing-promtool to skip these checks")
        return
    good = True
    if prom_config:
        good &= run([promtool, "check", "config", os.path.join(root, prom_config)], rep, prom_config)
    for rel in rule_files:
        good &= run([promtool, "check", "rules", os.path.join(root, rel)], rep, rel)
    for rel in test_files:
        good &= run([promtool, "test", "rules", os.path.join(root, rel)], rep, rel)
    if dash_exprs:
        # Each dashboard query becomes a recording rule, so promtool parses it.
        # Grafana variables are replaced by values of the right kind.
        rules, names = [], {}
        for i, (where, expr) in enumerate(dash_exprs):
            e = re.sub(r"\$__\w+|\$\{__\w+\}", "5m", expr)
            e = GRAFANA_VAR_RE.sub("x", e)
            rec = f"dashboard:query_{i}"
            names[rec] = where
            rules.append({"record": rec, "expr": e})
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tmp:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, tmp)
        try:
            proc = subprocess.run([promtool, "check", "rules", tmp.name], capture_output=True, text=True)
            if proc.returncode != 0:
                good = False
                out = proc.stdout + proc.stderr
                hit = [w for rec, w in names.items() if re.search(rf"\b{rec}\b", out)]
                for where in hit or ["dashboard queries"]:
                    rep.fail(where, "PromQL does not parse:\n    " + out.strip().replace("\n", "\n    "))
        finally:
            os.unlink(tmp.name)
    if good:
        rep.ok(f"promtool: config, {len(rule_files)} rule file(s), {len(test_files)} rule test file(s), "
               f"{len(dash_exprs)} dashboard queries")


# ---------------------------------------------------------------- 5. Kubernetes

def port_of(address, default):
    m = re.search(r":(\d+)$", str(address or ""))
    return int(m.group(1)) if m else default


def check_server_config(where, cfg, root, rep):
    """The YAML config embedded in the ConfigMap, as the image will read it."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("models"), list) or not cfg["models"]:
        rep.fail(where, "the config has no non-empty `models` list")
        return
    for i, model in enumerate(cfg["models"]):
        w = f"{where}: models[{i}]"
        if not isinstance(model, dict) or not model.get("name") or not model.get("path"):
            rep.fail(w, "needs `name` and `path`")
            continue
        paths = [("path", model["path"])]
        for ds in ("evaluation", "calibration"):
            for key in ("inputs", "labels"):
                if isinstance(model.get(ds), dict) and model[ds].get(key):
                    paths.append((f"{ds}.{key}", model[ds][key]))
        for key, p in paths:
            p = str(p)
            if not p.startswith("/"):
                rep.fail(w, f"{key} {p!r} is relative; use an absolute path in the image")
            elif p.startswith(IMAGE_MODELS_DIR):
                local = os.path.join(root, "models", p[len(IMAGE_MODELS_DIR):])
                if not os.path.isfile(local):
                    rep.fail(w, f"{key} {p} is not in the image: models/{p[len(IMAGE_MODELS_DIR):]} does not exist")
            elif p.startswith("/usr/share/datasets/") and not os.path.exists(p):
                rep.note(f"{w}: {key} {p} is not on this machine (the image installs dataset-fashion-mnist)")
        variants = model.get("variants") or [{"name": "fp32"}]
        unquantized = [v.get("name") for v in variants
                       if isinstance(v, dict) and not ({"weights", "activations", "auto"} & set(v))]
        drift = model.get("drift")
        if not isinstance(drift, dict):
            rep.fail(w, "has no `drift` section (live accuracy monitoring)")
            continue
        rate = drift.get("sample_rate", 0)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
            rep.fail(w, f"drift.sample_rate {rate!r} is not a fraction 0..1")
        if drift.get("mode", "shadow") not in ("shadow", "mirror"):
            rep.fail(w, f"drift.mode {drift.get('mode')!r} is not shadow or mirror")
        if "reference" in drift and drift["reference"] not in unquantized:
            rep.fail(w, f"drift.reference {drift['reference']!r} is not an unquantized variant {unquantized}")
        for key, lo, hi in (("queue_capacity", 1, 65536), ("feedback_capacity", 0, 1 << 20)):
            v = drift.get(key, lo)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                rep.fail(w, f"drift.{key} {v!r} is out of range {lo}..{hi}")
        unknown = set(drift) - {"sample_rate", "mode", "reference", "queue_capacity", "feedback_capacity"}
        if unknown:
            rep.fail(w, f"drift has unknown keys {sorted(unknown)}")


def selector_matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def embedded_config(where, c, volumes, configmaps, root, rep):
    """The server config the container reads from its mounted ConfigMap,
    checked; None when there is none or it is broken (reported)."""
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts", []) or []}
    m = mounts.get(CONTAINER_CONFIG_DIR)
    cm_name = ((volumes.get(m.get("name")) or {}).get("configMap") or {}).get("name") if m else None
    if not cm_name:
        rep.fail(where, f"no ConfigMap mounted at {CONTAINER_CONFIG_DIR}")
        return None
    if cm_name not in configmaps:
        rep.fail(where, f"mounts ConfigMap {cm_name}, which is not among the manifests")
        return None
    cm_rel, cm = configmaps[cm_name]
    args = " ".join(str(a) for a in (c.get("command") or []) + (c.get("args") or []))
    am = re.search(re.escape(CONTAINER_CONFIG_DIR) + r"/(\S+)", args)
    key = am.group(1) if am else "quantserve.yaml"  # the image's default CMD
    cw = f"{cm_rel}: ConfigMap {cm_name} key {key}"
    text = (cm.get("data") or {}).get(key)
    if text is None:
        rep.fail(cw, "missing (the container reads it)")
        return None
    try:
        cfg = yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as e:
        rep.fail(cw, f"embedded config does not parse: {e}")
        return None
    check_server_config(cw, cfg, root, rep)
    return cfg if isinstance(cfg, dict) else None


def check_container(where, c, pod, cfg, rep):
    """Probes, security context, resources and timing of one container."""
    server = (cfg or {}).get("server") or {}
    shutdown_ms = server.get("shutdown_grace_ms", 30000)
    grpc_port = port_of(server.get("grpc_address"), 8500)
    pod_sc = pod.get("securityContext") or {}
    sc = c.get("securityContext") or {}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if not p:
            rep.fail(where, f"no {probe}")
        elif "grpc" in p and p["grpc"].get("port") != grpc_port:
            rep.fail(where, f"{probe} checks port {p['grpc'].get('port')}, the server listens on {grpc_port}")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        rep.fail(where, "runAsNonRoot is not true")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, None):
        rep.fail(where, "runAsUser must be the image's non-root uid (10001)")
    if sc.get("readOnlyRootFilesystem") is not True:
        rep.fail(where, "readOnlyRootFilesystem is not true")
    elif "/tmp" not in [m.get("mountPath") for m in c.get("volumeMounts", []) or []]:
        rep.fail(where, "read-only root filesystem but nothing writable mounted at /tmp")
    if sc.get("allowPrivilegeEscalation") is not False:
        rep.fail(where, "allowPrivilegeEscalation is not false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        rep.fail(where, "capabilities.drop does not contain ALL")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                rep.fail(where, f"resources.{kind}.{r} is not set")

    start = c.get("startupProbe") or {}
    budget = start.get("initialDelaySeconds", 0) + start.get("periodSeconds", 10) * start.get("failureThreshold", 3)
    if start and budget < MIN_STARTUP_SECONDS:
        rep.fail(where, f"startupProbe allows {budget} s; start-up quantization needs >= {MIN_STARTUP_SECONDS} s")
    # SIGTERM comes after preStop; the drain then needs shutdown_grace_ms.
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command") or []
    pre_s = int(pre[-1]) if len(pre) >= 2 and pre[0].endswith("sleep") and str(pre[-1]).isdigit() else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 <= shutdown_ms + pre_s * 1000:
        rep.fail(where, f"terminationGracePeriodSeconds {grace} does not exceed preStop {pre_s} s + "
                        f"server.shutdown_grace_ms {shutdown_ms}: the drain would be SIGKILLed")
    live = c.get("livenessProbe") or {}
    if live and live.get("periodSeconds", 10) * live.get("failureThreshold", 3) < grace:
        rep.fail(where, "livenessProbe can fail during a drain (NOT_SERVING) before the grace period ends")


def check_k8s(root, parsed, rep):
    errors_before = rep.errors
    kdir = os.path.join("deploy", "k8s")
    kust_rel = os.path.join(kdir, "kustomization.yaml")
    objects = []  # (file, doc)
    for rel, docs in sorted(parsed.items()):
        if os.path.dirname(rel) == kdir and rel != kust_rel:
            objects += [(rel, d) for d in docs if isinstance(d, dict)]
    if not objects:
        rep.fail(kdir, "no manifests")
        return

    def find(kind):
        return [(rel, d, (d.get("metadata") or {}).get("name")) for rel, d in objects if d.get("kind") == kind]

    # The kustomization lists exactly the manifests.
    if kust_rel not in parsed:
        rep.fail(kdir, "kustomization.yaml missing")
    else:
        listed = set(parsed[kust_rel][0].get("resources") or [])
        present = {os.path.basename(rel) for rel, _ in objects}
        for r in sorted(listed - present):
            rep.fail(kust_rel, f"resource {r} does not exist")
        for r in sorted(present - listed):
            rep.fail(kust_rel, f"{r} is not listed in resources")

    configmaps = {name: (rel, d) for rel, d, name in find("ConfigMap")}
    if not find("Deployment"):
        rep.fail(kdir, "no Deployment")
    for rel, dep, name in find("Deployment"):
        where = f"{rel}: Deployment {name}"
        tmpl = (dep.get("spec") or {}).get("template") or {}
        pod = tmpl.get("spec") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
        if not selector_matches(((dep.get("spec") or {}).get("selector") or {}).get("matchLabels"), labels):
            rep.fail(where, "spec.selector does not match the pod template labels")
        volumes = {v.get("name"): v for v in pod.get("volumes", []) or []}
        containers = pod.get("containers") or []
        if not containers:
            rep.fail(where, "no containers")
        container_ports = {}
        metrics_port = 9090
        for c in containers:
            cw = f"{where}: container {c.get('name')}"
            cfg = embedded_config(cw, c, volumes, configmaps, root, rep)
            check_container(cw, c, pod, cfg, rep)
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", []) or []}
            container_ports.update(ports)
            metrics_port = port_of(((cfg or {}).get("server") or {}).get("metrics_address"), metrics_port)
            if metrics_port not in ports.values():
                rep.fail(cw, f"metrics port {metrics_port} is not a containerPort")
        if annotations.get("prometheus.io/scrape") != "true":
            rep.fail(where, 'pod template lacks annotation prometheus.io/scrape: "true"')
        if str(annotations.get("prometheus.io/port")) != str(metrics_port):
            rep.fail(where, f"prometheus.io/port is {annotations.get('prometheus.io/port')!r}, "
                            f"metrics listen on {metrics_port}")

        # Everything that should select these pods.
        for srel, svc, sname in find("Service"):
            sw = f"{srel}: Service {sname}"
            if not selector_matches((svc.get("spec") or {}).get("selector"), labels):
                rep.fail(sw, f"selector matches no pod of Deployment {name}")
                continue
            for p in svc["spec"].get("ports", []) or []:
                tp = p.get("targetPort", p.get("port"))
                if isinstance(tp, str) and tp not in container_ports:
                    rep.fail(sw, f"targetPort {tp} names no container port")
                if p.get("name") == "grpc" and p.get("appProtocol") != "grpc":
                    rep.fail(sw, "port grpc lacks appProtocol: grpc")
        for hrel, hpa, _ in find("HorizontalPodAutoscaler"):
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if hpa.get("apiVersion") != "autoscaling/v2":
                rep.fail(hrel, "use apiVersion autoscaling/v2")
            if ref.get("kind") != "Deployment" or ref.get("name") != name:
                rep.fail(hrel, f"scaleTargetRef is {ref}, not Deployment {name}")
        for prel, pdb, _ in find("PodDisruptionBudget"):
            if not selector_matches(((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels"), labels):
                rep.fail(prel, f"selector matches no pod of Deployment {name}")
    if rep.errors == errors_before:
        rep.ok(f"Kubernetes manifests ({len(objects)} objects) and the embedded server config")


# ---------------------------------------------------------------- 6. compose

def bind_mounts(service):
    """[(host path, container path)] of a compose service's bind mounts."""
    out = []
    for v in service.get("volumes", []) or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and parts[0].startswith((".", "/")):
                out.append((parts[0], parts[1]))
        elif isinstance(v, dict) and v.get("type") == "bind":
            out.append((v.get("source"), v.get("target")))
    return out


def check_compose(root, parsed, rep):
    errors_before = rep.errors
    rel = os.path.join("deploy", "compose.yaml")
    if rel not in parsed:
        rep.fail(rel, "missing")
        return
    base = os.path.join(root, "deploy")
    services = parsed[rel][0].get("services") or {}
    for needed in ("quantserve", "prometheus", "grafana"):
        if needed not in services:
            rep.fail(rel, f"no service {needed}")
    for sname, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isfile(os.path.join(base, ctx, dockerfile)):
                rep.fail(f"{rel}: service {sname}", f"build: {dockerfile} not found in context {ctx}")
        for host, _ in bind_mounts(svc):
            if not os.path.exists(os.path.join(base, host)):
                rep.fail(f"{rel}: service {sname}", f"mounts {host}, which does not exist")

    # quantserve's --set overrides apply to the image's config/quantserve.yaml.
    qs = services.get("quantserve") or {}
    try:
        with open(os.path.join(root, "config", "quantserve.yaml"), encoding="utf-8") as f:
            image_cfg = yaml.safe_load(f)
        models = {m["name"]: m for m in image_cfg.get("models", [])}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        rep.fail("config/quantserve.yaml", f"cannot read model names: {e}")
        models = {}
    cmd = [str(a) for a in qs.get("command", []) or []] if isinstance(qs.get("command"), list) else []
    for i, arg in enumerate(cmd):
        if arg != "--set":
            continue
        kv = cmd[i + 1] if i + 1 < len(cmd) else ""
        where = f"{rel}: service quantserve --set {kv}"
        key, sep, value = kv.partition("=")
        parts = key.split(".")
        if not sep or not key:
            rep.fail(where, "expected key.path=value")
        elif parts[0] == "models":
            if len(parts) < 3 or parts[1] not in models:
                rep.fail(where, f"models.<name>.<key>: no model named {parts[1] if len(parts) > 1 else ''!r} "
                                f"in config/quantserve.yaml (models: {', '.join(models)})")
            elif parts[2] == "drift":
                field = parts[3] if len(parts) > 3 else ""
                if field == "mode" and value not in ("shadow", "mirror"):
                    rep.fail(where, "drift.mode must be shadow or mirror")
                elif field == "sample_rate":
                    try:
                        ok = 0 <= float(value) <= 1
                    except ValueError:
                        ok = False
                    if not ok:
                        rep.fail(where, "drift.sample_rate must be a fraction 0..1")
                elif field not in ("mode", "sample_rate", "reference", "queue_capacity", "feedback_capacity"):
                    rep.fail(where, f"unknown drift key {field!r}")
        elif parts[0] != "server":
            rep.fail(where, "keys start with server. or models.<name>.")

    # Prometheus: rule files mounted beside the config, the scrape target is a service.
    prom = services.get("prometheus") or {}
    prom_rel = os.path.join("deploy", "prometheus", "prometheus.yml")
    prom_cfg = (parsed.get(prom_rel) or [{}])[0]
    mounts = dict((os.path.normpath(os.path.join("deploy", h)), t) for h, t in bind_mounts(prom))
    cfg_target = mounts.get(prom_rel)
    if not cfg_target:
        rep.fail(f"{rel}: service prometheus", f"does not mount {prom_rel}")
    else:
        for rf in prom_cfg.get("rule_files", []) or []:
            want = os.path.normpath(os.path.join(os.path.dirname(cfg_target), rf))
            src = os.path.normpath(os.path.join(os.path.dirname(prom_rel), rf))
            if mounts.get(src) != want:
                rep.fail(f"{rel}: service prometheus", f"rule file {src} must be mounted at {want}")
    for job in prom_cfg.get("scrape_configs", []) or []:
        for sc in job.get("static_configs", []) or []:
            for target in sc.get("targets", []) or []:
                host = target.rsplit(":", 1)[0]
                if host not in services:
                    rep.fail(prom_rel, f"job {job.get('job_name')}: target {target} is not a compose service")
    if "quantserve" not in [j.get("job_name") for j in prom_cfg.get("scrape_configs", []) or []]:
        rep.fail(prom_rel, "no scrape job named quantserve (the alerts select job=\"quantserve\")")

    # Grafana: datasource URL, dashboard provider path, datasource uid.
    graf = services.get("grafana") or {}
    gmounts = dict((os.path.normpath(os.path.join("deploy", h)), t) for h, t in bind_mounts(graf))
    dash_dir = os.path.join("deploy", "grafana", "dashboards")
    uids = set()
    for prel, docs in parsed.items():
        if prel.startswith(os.path.join("deploy", "grafana", "provisioning", "datasources")):
            for ds in docs[0].get("datasources", []) or []:
                uids.add(ds.get("uid"))
                m = re.match(r"https?://([^:/]+):(\d+)", str(ds.get("url", "")))
                if not m or m.group(1) not in services:
                    rep.fail(prel, f"datasource url {ds.get('url')} is not a compose service")
        if prel.startswith(os.path.join("deploy", "grafana", "provisioning", "dashboards")):
            for prov in docs[0].get("providers", []) or []:
                path = (prov.get("options") or {}).get("path")
                if gmounts.get(dash_dir) != path:
                    rep.fail(prel, f"provider path {path} is not where compose mounts {dash_dir} "
                                   f"({gmounts.get(dash_dir)})")
    for prel, docs in parsed.items():
        if prel.startswith(dash_dir) and prel.endswith(".json"):
            for var in (docs[0].get("templating") or {}).get("list", []) or []:
                if var.get("type") == "datasource":
                    cur = (var.get("current") or {}).get("value")
                    if cur not in uids:
                        rep.fail(prel, f"${var.get('name')} defaults to {cur!r}, no provisioned datasource uid {sorted(uids)}")
    if rep.errors == errors_before:
        rep.ok("compose: services, mounts, --set overrides, Prometheus and Grafana wiring")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root (default: this script's ..)")
    ap.add_argument("--metrics", help="a /metrics scrape of a running server to check the names against")
    ap.add_argument("--serve", metavar="QUANTSERVE",
                    help="start this quantserve binary on a small config and check against its scrape")
    ap.add_argument("--client", metavar="QUANTSERVE_CLIENT",
                    help="with --serve: send traffic with this quantserve-client first")
    ap.add_argument("--allow-missing-promtool", action="store_true",
                    help="skip the promtool checks when promtool is not installed")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    rep = Report()

    parsed = parse_deploy_files(root, rep)
    defined = defined_metrics(root, rep)
    types = documented_types(root)

    prom_rel = os.path.join("deploy", "prometheus", "prometheus.yml")
    rule_files = []
    if prom_rel in parsed:
        for rf in parsed[prom_rel][0].get("rule_files", []) or []:
            rule_files.append(os.path.normpath(os.path.join(os.path.dirname(prom_rel), rf)))
    else:
        rep.fail(prom_rel, "missing")
    for rf in rule_files:
        if rf not in parsed:
            rep.fail(prom_rel, f"rule file {rf} is missing or does not parse")
    test_files = sorted(r for r in parsed if r.startswith(os.path.join("deploy", "prometheus"))
                        and re.search(r"_test\.ya?ml$", r))

    refs, recorded, dash_exprs = {}, set(), []

    def add(where, expr):
        metrics, recs = promql_names(expr)
        for n in metrics | recs:
            refs.setdefault(n, []).append(where)

    for where, rule in collect_rules(parsed, rule_files):
        if rule.get("record"):
            recorded.add(rule["record"])
        add(where, str(rule.get("expr", "")))
    for rel in test_files:
        for t in parsed[rel][0].get("tests", []) or []:
            for s in t.get("input_series", []) or []:
                add(f"{rel}: input series", str(s.get("series", "")))
    dashboards = [r for r in parsed if r.startswith(os.path.join("deploy", "grafana", "dashboards"))
                  and r.endswith(".json")]
    if not dashboards:
        rep.fail("deploy/grafana/dashboards", "no dashboard JSON")
    for rel in sorted(dashboards):
        queries = dashboard_queries(rel, parsed[rel][0])
        if not queries:
            rep.fail(rel, "no panel has a PromQL query")
        for where, expr, is_promql in queries:
            add(where, expr)
            if is_promql:
                dash_exprs.append((where, expr))
    check_metric_refs(refs, defined, types, recorded, rep)
    if args.metrics:
        check_scrape(args.metrics, refs, rep)
    if args.serve:
        with tempfile.TemporaryDirectory(prefix="check_deploy.") as tmp:
            scrape = os.path.join(tmp, "metrics.txt")
            if serve_and_scrape(root, args.serve, args.client, tmp, scrape, rep):
                check_scrape(scrape, refs, rep, label=f"the scrape of {args.serve}")
    check_promtool(root, prom_rel if prom_rel in parsed else None, rule_files, test_files,
                   dash_exprs, rep, args.allow_missing_promtool)
    for check in (check_k8s, check_compose):
        try:
            check(root, parsed, rep)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
            # A manifest of an unexpected shape (a list where a map belongs...).
            rep.fail(check.__name__, f"unexpected structure: {type(e).__name__}: {e}")

    if rep.errors:
        print(f"\ncheck_deploy: {rep.errors} problem(s)")
        return 1
    print("\ncheck_deploy: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
