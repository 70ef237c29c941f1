//! The installed `kubectl` against a live `gantry server`, through the kubeconfig the
//! server writes: apply (create, then update), get with Table output, -o yaml, scale,
//! delete, get -w, api-resources, readable errors, and the seed manifests.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gantry_tests::{kubectl_bin, seed_examples, ApiServerProcess};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: gantry/web:1
        ports:
        - containerPort: 8080
";

#[test]
fn kubectl_drives_the_everyday_verbs() {
    let s = ApiServerProcess::start();

    let out = s.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.0, "first apply: {out:?}");
    assert!(out.1.contains("deployment.apps/web created"), "{out:?}");
    let updated = DEPLOYMENT
        .replace("replicas: 2", "replicas: 3")
        .replace("gantry/web:1", "gantry/web:2");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &updated);
    assert!(out.0, "second apply: {out:?}");
    assert!(out.1.contains("deployment.apps/web configured"), "{out:?}");

    let table = s.kubectl_ok(&["get", "deployments"]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("web ") && l.contains("0/3")),
        "{table}"
    );

    let yaml = s.kubectl_ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(yaml.contains("replicas: 3"), "{yaml}");
    assert!(yaml.contains("image: gantry/web:2"), "{yaml}");
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    assert!(
        yaml.contains("generation: 2"),
        "the update bumped the generation: {yaml}"
    );

    let out = s.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let replicas = s.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas.trim(), "5");

    let out = s.kubectl_ok(&["delete", "deployment", "web"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    let (ok, _, err) = s.kubectl(&["get", "deployment", "web"]);
    assert!(
        !ok && err.contains("NotFound") && err.contains("\"web\" not found"),
        "{err}"
    );
}

#[test]
fn kubectl_get_watch_sees_events() {
    let s = ApiServerProcess::start();
    let mut watch = Command::new(kubectl_bin())
        .args(["get", "configmaps", "-w", "--output-watch-events"])
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HOME", s.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let mut stdout = watch.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if seen.contains("MODIFIED") && seen.contains("DELETED") {
                break;
            }
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(500));
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: \"1\"\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], cm);
    assert!(out.0, "{out:?}");
    s.kubectl_ok(&["label", "configmap", "watched", "tier=x"]);
    s.kubectl_ok(&["delete", "configmap", "watched"]);
    let seen = reader.join().expect("reader");
    let _ = watch.kill();
    let _ = watch.wait();
    for event in ["ADDED", "MODIFIED", "DELETED"] {
        assert!(
            seen.lines().any(|l| l.contains(event) && l.contains("watched")),
            "no {event} for watched in:\n{seen}"
        );
    }
}

#[test]
fn kubectl_lists_api_resources_with_short_names() {
    let s = ApiServerProcess::start();
    let out = s.kubectl_ok(&["api-resources"]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(row("pods"), Some(vec!["pods", "po", "v1", "true", "Pod"]), "{out}");
    assert_eq!(
        row("deployments"),
        Some(vec!["deployments", "deploy", "apps/v1", "true", "Deployment"]),
        "{out}"
    );
    assert_eq!(row("nodes"), Some(vec!["nodes", "no", "v1", "false", "Node"]), "{out}");
    for name in [
        "services",
        "endpoints",
        "replicationcontrollers",
        "replicasets",
        "namespaces",
        "configmaps",
        "secrets",
        "events",
        "endpointslices",
        "leases",
        "jobs",
    ] {
        assert!(row(name).is_some(), "{name} missing from:\n{out}");
    }
}

#[test]
fn kubectl_reports_an_invalid_manifest_readably() {
    let s = ApiServerProcess::start();
    let bad = "apiVersion: v1
kind: Pod
metadata:
  name: Bad_Name
spec:
  containers:
  - name: c
";
    let (ok, out, err) = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    assert!(!ok, "an invalid pod was accepted: {out}");
    assert!(err.contains("is invalid"), "{err}");
    assert!(err.contains("metadata.name"), "the bad name is named: {err}");
    assert!(
        err.contains("spec.containers[0].image"),
        "the missing image is named: {err}"
    );
}

#[test]
fn kubectl_accepts_the_seed_manifests() {
    let s = ApiServerProcess::start();
    let dir = seed_examples();
    for file in [
        "mysql-rc.yaml",
        "mysql-svc.yaml",
        "myweb-rc.yaml",
        "myweb-svc.yaml",
        "twocontainers-pod.yaml",
        "myservice.json",
    ] {
        let path = dir.join(file);
        let out = s.kubectl_ok(&["apply", "-f", &path.display().to_string()]);
        assert!(out.contains("created"), "{file}: {out}");
    }
    let rcs = s.kubectl_ok(&["get", "rc"]);
    assert!(rcs.contains("mysql") && rcs.contains("myweb"), "{rcs}");
    let svc = s.kubectl_ok(&["get", "svc", "myweb", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    assert_eq!(svc.trim(), "30001");
    let pod = s.kubectl_ok(&[
        "get",
        "pod",
        "twocontainers",
        "-o",
        "jsonpath={.spec.containers[*].name}",
    ]);
    assert_eq!(pod.trim(), "sise shell");
    let ann = s.kubectl_ok(&[
        "get",
        "pod",
        "twocontainers",
        "-o",
        "jsonpath={.metadata.annotations.releasedBy}",
    ]);
    assert_eq!(ann.trim(), "david");
}
