//! The installed `kubectl` against a live `gantry server`, through the kubeconfig the
//! server writes: apply (create, then update), get with Table output, -o yaml, scale,
//! delete, get -w, api-resources, readable errors, the seed manifests, and the typed commands
//! (`create configmap`, `create deployment`, …) that send protobuf bodies.

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
        .stderr(Stdio::piped())
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
            // Stop once the DELETED line has arrived whole.
            if seen.lines().any(|l| l.starts_with("DELETED") && l.contains("watched")) && seen.ends_with('\n') {
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
    let mut err = String::new();
    if let Some(mut e) = watch.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = watch.wait();
    let seen = format!("{seen}\n(kubectl stderr: {err})\nserver log:\n{}", s.process.output());
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

/// `kubectl get <what> -o jsonpath=<path>`, trimmed.
fn jsonpath(s: &ApiServerProcess, what: &[&str], path: &str) -> String {
    let output = format!("jsonpath={path}");
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", &output]);
    s.kubectl_ok(&args).trim().to_string()
}

// kubectl's typed `create` commands send protobuf bodies (and accept JSON answers).

#[test]
fn kubectl_create_configmap_secret_and_namespace() {
    let s = ApiServerProcess::start();

    let out = s.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "--from-literal=b=two",
    ]);
    assert!(out.contains("configmap/settings created"), "{out}");
    assert_eq!(jsonpath(&s, &["configmap", "settings"], "{.data.a} {.data.b}"), "1 two");

    let out = s.kubectl_ok(&["create", "secret", "generic", "creds", "--from-literal=user=admin"]);
    assert!(out.contains("secret/creds created"), "{out}");
    assert_eq!(
        jsonpath(&s, &["secret", "creds"], "{.data.user} {.type}"),
        "YWRtaW4= Opaque",
        "data travels as bytes and reads back base64"
    );

    let out = s.kubectl_ok(&["create", "namespace", "team-a"]);
    assert!(out.contains("namespace/team-a created"), "{out}");
    assert_eq!(jsonpath(&s, &["namespace", "team-a"], "{.status.phase}"), "Active");
    let out = s.kubectl_ok(&["create", "configmap", "local", "-n", "team-a", "--from-literal=k=v"]);
    assert!(out.contains("configmap/local created"), "{out}");
    assert_eq!(
        jsonpath(&s, &["configmap", "local", "-n", "team-a"], "{.metadata.namespace}"),
        "team-a"
    );
}

#[test]
fn kubectl_create_deployment_with_replicas_and_port_then_expose_it() {
    let s = ApiServerProcess::start();

    let out = s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert_eq!(
        jsonpath(
            &s,
            &["deployment", "web"],
            "{.spec.replicas} {.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].image} \
             {.spec.template.spec.containers[0].ports[0].containerPort}"
        ),
        "2 web nginx 80"
    );
    assert_eq!(
        jsonpath(&s, &["deployment", "web"], "{.spec.strategy.type}"),
        "RollingUpdate",
        "the server defaults what protobuf left unset"
    );

    let out = s.kubectl_ok(&["expose", "deployment", "web", "--port", "80"]);
    assert!(out.contains("service/web exposed"), "{out}");
    assert_eq!(
        jsonpath(&s, &["service", "web"], "{.spec.selector.app} {.spec.ports[0].port}"),
        "web 80"
    );
}

#[test]
fn kubectl_create_service_clusterip() {
    let s = ApiServerProcess::start();
    let out = s.kubectl_ok(&["create", "service", "clusterip", "api", "--tcp=80:8080"]);
    assert!(out.contains("service/api created"), "{out}");
    assert_eq!(
        jsonpath(
            &s,
            &["service", "api"],
            "{.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.ports[0].protocol} {.spec.selector.app}"
        ),
        "ClusterIP 80 8080 TCP api"
    );
}

#[test]
fn kubectl_create_job_with_a_command() {
    let s = ApiServerProcess::start();
    let out = s.kubectl_ok(&["create", "job", "once", "--image=busybox", "--", "echo", "hi"]);
    assert!(out.contains("job.batch/once created"), "{out}");
    assert_eq!(
        jsonpath(
            &s,
            &["job", "once"],
            "{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].command} \
             {.spec.template.spec.restartPolicy}"
        ),
        "busybox [\"echo\",\"hi\"] Never"
    );
}

#[test]
fn kubectl_run_with_labels_env_port_and_command() {
    let s = ApiServerProcess::start();
    let out = s.kubectl_ok(&[
        "run",
        "p",
        "--image=busybox",
        "--labels=a=b",
        "--port=80",
        "--env=K=V",
        "--",
        "sleep",
        "10",
    ]);
    assert!(out.contains("pod/p created"), "{out}");
    assert_eq!(
        jsonpath(
            &s,
            &["pod", "p"],
            "{.metadata.labels.a} {.spec.containers[0].image} {.spec.containers[0].ports[0].containerPort} \
             {.spec.containers[0].env[0].name}={.spec.containers[0].env[0].value} {.spec.containers[0].args}"
        ),
        "b busybox 80 K=V [\"sleep\",\"10\"]"
    );
}

#[test]
fn kubectl_rollout_status_and_undo_work() {
    let s = ApiServerProcess::start();
    let v1 = DEPLOYMENT.replace("replicas: 2", "replicas: 0");
    assert!(s.kubectl_stdin(&["apply", "-f", "-"], &v1).0);
    let out = s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let v2 = v1.replace("gantry/web:1", "gantry/web:2");
    assert!(s.kubectl_stdin(&["apply", "-f", "-"], &v2).0);
    let out = s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let rs = s.kubectl_ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    ]);
    let mut revisions: Vec<&str> = rs.split_whitespace().collect();
    revisions.sort();
    assert_eq!(revisions, ["1", "2"], "one ReplicaSet per revision");
    let out = s.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    let image = s.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.trim(), "gantry/web:1");
    let out = s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
}

#[test]
fn the_scheduler_binds_the_seed_replication_controller_pods_to_a_node() {
    let s = ApiServerProcess::start();
    let node = "apiVersion: v1
kind: Node
metadata:
  name: worker-1
  labels:
    kubernetes.io/hostname: worker-1
status:
  allocatable: {cpu: \"4\", memory: 8Gi, pods: \"110\"}
  capacity: {cpu: \"4\", memory: 8Gi, pods: \"110\"}
  conditions:
  - type: Ready
    status: \"True\"
";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], node);
    assert!(out.0, "{out:?}");
    let rc = seed_examples().join("myweb-rc.yaml");
    s.kubectl_ok(&["apply", "-f", &rc.display().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = s.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=myweb",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ]);
        if nodes.split_whitespace().collect::<Vec<_>>() == ["worker-1", "worker-1"] {
            break;
        }
        assert!(Instant::now() < deadline, "the pods were not bound: {nodes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let wide = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.lines()
            .filter(|l| l.contains("myweb-"))
            .all(|l| l.contains("worker-1")),
        "{wide}"
    );
}
