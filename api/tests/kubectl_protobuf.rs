//! Request bodies captured from kubectl 1.32 (`application/vnd.kubernetes.protobuf`) decode to
//! the JSON that the same command prints with `--dry-run=client -o json`, less the
//! `creationTimestamp: null` and empty `status` that Go's JSON writes for unset values.
//!
//! Each fixture under `tests/fixtures/` is the body of the POST the command named beside it
//! sent to a logging proxy in front of `gantry server`.

use gantry_api::protobuf::decode;
use serde_json::{json, Value};

fn decoded(fixture: &str) -> Value {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    decode(&body).unwrap_or_else(|e| panic!("decoding {fixture}: {e}"))
}

#[test]
fn create_configmap_from_literals_decodes() {
    // kubectl create configmap cm1 --from-literal=a=1 --from-literal=b=two
    assert_eq!(
        decoded("create-configmap.pb"),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm1"},
            "data": {"a": "1", "b": "two"}
        })
    );
}

#[test]
fn create_secret_generic_decodes_with_base64_data() {
    // kubectl create secret generic s1 --from-literal=user=admin --from-literal=pw=x
    assert_eq!(
        decoded("create-secret-generic.pb"),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s1"},
            "data": {"pw": "eA==", "user": "YWRtaW4="}
        })
    );
}

#[test]
fn create_secret_docker_registry_decodes_with_its_type() {
    // kubectl create secret docker-registry reg --docker-server=r.example --docker-username=u
    //   --docker-password=p
    assert_eq!(
        decoded("create-secret-docker-registry.pb"),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "reg"},
            "data": {
                ".dockerconfigjson":
                    "eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"
            },
            "type": "kubernetes.io/dockerconfigjson"
        })
    );
}

#[test]
fn create_namespace_decodes() {
    // kubectl create namespace ns1
    assert_eq!(
        decoded("create-namespace.pb"),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "ns1"},
            "spec": {},
            "status": {}
        })
    );
}

#[test]
fn create_deployment_with_replicas_and_port_decodes() {
    // kubectl create deployment web --image=nginx --replicas=2 --port=80
    assert_eq!(
        decoded("create-deployment.pb"),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {}
                        }]
                    }
                },
                "strategy": {}
            }
        })
    );
}

#[test]
fn create_deployment_with_two_images_keeps_both_containers_in_order() {
    // kubectl create deployment multi --image=nginx --image=busybox
    let object = decoded("create-deployment-two-images.pb");
    assert_eq!(object["spec"]["replicas"], 1);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "nginx", "image": "nginx", "resources": {}},
            {"name": "busybox", "image": "busybox", "resources": {}}
        ])
    );
}

#[test]
fn create_service_clusterip_decodes_with_an_int_target_port() {
    // kubectl create service clusterip s1 --tcp=80:8080
    assert_eq!(
        decoded("create-service-clusterip.pb"),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s1", "labels": {"app": "s1"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "s1"},
                "type": "ClusterIP"
            }
        })
    );
}

#[test]
fn create_service_nodeport_decodes_with_its_node_port() {
    // kubectl create service nodeport np --tcp=80:8080 --node-port=30080
    let object = decoded("create-service-nodeport.pb");
    assert_eq!(
        object["spec"],
        json!({
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
            "selector": {"app": "np"},
            "type": "NodePort"
        })
    );
}

#[test]
fn create_job_with_a_command_decodes() {
    // kubectl create job j1 --image=busybox -- echo hi
    assert_eq!(
        decoded("create-job.pb"),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j1"},
            "spec": {
                "template": {
                    "metadata": {},
                    "spec": {
                        "containers": [{
                            "name": "j1",
                            "image": "busybox",
                            "command": ["echo", "hi"],
                            "resources": {}
                        }],
                        "restartPolicy": "Never"
                    }
                }
            }
        })
    );
}

#[test]
fn decoded_objects_start_with_api_version_and_kind() {
    let object = decoded("create-deployment.pb");
    let keys: Vec<&String> = object.as_object().expect("an object").keys().take(2).collect();
    assert_eq!(keys, ["apiVersion", "kind"]);
}
