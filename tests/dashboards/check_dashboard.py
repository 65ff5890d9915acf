#!/usr/bin/env python3
"""Structural check of a Grafana dashboard JSON model (Grafana is not
installed here, so this is what "importable" is checked against):

- valid JSON with a title, a uid and the schemaVersion of a current Grafana;
- a datasource variable DS_PROMETHEUS (type prometheus) and query variables
  `job` and `instance` on that data source;
- every panel has a unique id and a gridPos; every non-row panel has a
  datasource naming ${DS_PROMETHEUS} and at least one target, and every
  target a refId, that datasource and a non-empty expr;
- every expr filters on $job and $instance, so the variables take effect;
- every metric name used in an expr, and in the alert rules, is documented
  in docs/metrics.md (`pushdaemon_<c>_...` stands for apns, fcm and oauth).

Usage: check_dashboard.py DASHBOARD.json ALERTS.yml METRICS.md
       check_dashboard.py --self-test DASHBOARD.json
Exit status 0 when everything holds; otherwise 1 with one line per finding.
"""
import json
import re
import sys

DS = "${DS_PROMETHEUS}"
MIN_SCHEMA = 36  # Grafana 9.x and later


def check_dashboard(dash):
    findings = []
    if not isinstance(dash, dict):
        return ["the top level is not an object"], []
    for key in ("title", "uid"):
        if not dash.get(key):
            findings.append(f"no {key}")
    schema = dash.get("schemaVersion")
    if not isinstance(schema, int) or schema < MIN_SCHEMA:
        findings.append(f"schemaVersion {schema!r}: want an integer >= {MIN_SCHEMA}")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("DS_PROMETHEUS")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        findings.append("no datasource variable DS_PROMETHEUS of type prometheus")
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query":
            findings.append(f"no query variable '{name}'")
            continue
        if (v.get("datasource") or {}).get("uid") != DS:
            findings.append(f"variable '{name}': datasource is not {DS}")
        if not str(v.get("definition", "")).startswith("label_values("):
            findings.append(f"variable '{name}': definition is not label_values(...)")

    ids = set()

    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    panels = list(walk(dash.get("panels", [])))
    if not panels:
        findings.append("no panels")
    exprs = []
    for p in panels:
        title = p.get("title", "?")
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            findings.append(f"panel '{title}': id {pid!r} missing or not unique")
        ids.add(pid)
        grid = p.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            findings.append(f"panel '{title}': no complete gridPos")
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != DS:
            findings.append(f"panel '{title}': datasource is not {DS}")
        targets = p.get("targets", [])
        if not targets:
            findings.append(f"panel '{title}': no targets")
        for t in targets:
            expr = t.get("expr", "")
            if not t.get("refId"):
                findings.append(f"panel '{title}': a target has no refId")
            if (t.get("datasource") or {}).get("uid") != DS:
                findings.append(f"panel '{title}' {t.get('refId')}: datasource is not {DS}")
            if not expr.strip():
                findings.append(f"panel '{title}' {t.get('refId')}: empty expr")
                continue
            for var in ("$job", "$instance"):
                if var not in expr:
                    findings.append(f"panel '{title}' {t.get('refId')}: expr ignores {var}")
            exprs.append(expr)
    return findings, exprs


METRIC = re.compile(r"\b((?:leakscope|process|pushdaemon)_[a-z0-9_]+|up)\b")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def documented_names(metrics_md):
    names = set()
    for m in re.finditer(r"`((?:leakscope|process|pushdaemon)_[a-z0-9_<>]+)`", metrics_md):
        name = m.group(1)
        if "<c>" in name:
            names.update(name.replace("<c>", c) for c in ("apns", "fcm", "oauth"))
        else:
            names.add(name)
    return names


def undocumented(texts, documented):
    findings = []
    for where, text in texts:
        for name in sorted(set(METRIC.findall(text))):
            if name == "up":
                continue  # Prometheus' own
            base = HISTOGRAM_SUFFIX.sub("", name)
            if name not in documented and base not in documented:
                findings.append(f"{where}: {name} is not in docs/metrics.md")
    return findings


def self_test(path):
    """Each broken copy of the real dashboard is refused with its finding."""
    import copy
    with open(path) as f:
        good = json.load(f)
    assert check_dashboard(good)[0] == [], check_dashboard(good)[0]
    first = next(i for i, p in enumerate(good["panels"]) if p.get("type") != "row")

    def broken(change):
        d = copy.deepcopy(good)
        change(d)
        return check_dashboard(d)[0]

    cases = [
        (lambda d: d["panels"][first].pop("datasource"), "datasource is not"),
        (lambda d: d["panels"][first]["targets"][0].update(expr=" "), "empty expr"),
        (lambda d: d["panels"][first].update(targets=[]), "no targets"),
        (lambda d: d["panels"][first]["targets"][0].update(
            expr=d["panels"][first]["targets"][0]["expr"].replace("$instance", ".*")),
         "expr ignores $instance"),
        (lambda d: d["templating"]["list"].pop(0), "no datasource variable"),
        (lambda d: d.update(schemaVersion=16), "schemaVersion"),
        (lambda d: d["panels"][first].update(id=d["panels"][0]["id"]), "not unique"),
    ]
    for change, want in cases:
        findings = broken(change)
        assert any(want in f for f in findings), (want, findings)
    assert check_dashboard([])[0] == ["the top level is not an object"]
    docs = documented_names("`pushdaemon_<c>_upstream_cx_active` `leakscope_sockets`")
    assert undocumented([("x", "rate(pushdaemon_oauth_upstream_cx_active[1m])")], docs) == []
    assert undocumented([("x", "leakscope_nope")], docs) == [
        "x: leakscope_nope is not in docs/metrics.md"]
    print(f"self-test: {len(cases) + 3} broken inputs refused")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    try:
        with open(argv[1]) as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"{argv[1]}: {e}")
        return 1
    findings, exprs = check_dashboard(dash)
    with open(argv[2]) as f:
        alerts = f.read()
    with open(argv[3]) as f:
        documented = documented_names(f.read())
    # Only the rule expressions of the alerts file, not its comments.
    alert_exprs = "\n".join(line for line in alerts.splitlines() if not line.lstrip().startswith("#"))
    findings += undocumented([(argv[1], "\n".join(exprs)), (argv[2], alert_exprs)], documented)
    for line in findings:
        print(line)
    if not findings:
        print(f"{argv[1]}: {len(exprs)} expressions, every panel with a datasource and an expr")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
