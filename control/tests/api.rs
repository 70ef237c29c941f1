//! The API server over real HTTP against a real (one-node, durable) store: status codes and
//! reasons, optimistic concurrency, selectors and paging, watches with bookmarks, timeouts
//! and 410 Gone, finalizers, patches, subresources, limits, roles and metrics.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gantry_control::apiserver::{ApiServer, ApiServerConfig};
use gantry_store::rpc::TcpTransport;
use gantry_store::{NodeConfig, StoreNode};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

struct Api {
    server: ApiServer,
    _dir: tempfile::TempDir,
}

struct Resp {
    code: u16,
    headers: hyper::HeaderMap,
    body: Value,
}

impl Api {
    async fn start() -> Api {
        Api::start_with(|_| {}, |_| {}).await
    }

    async fn start_with(store: impl FnOnce(&mut NodeConfig), api: impl FnOnce(&mut ApiServerConfig)) -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = NodeConfig::new(1, "127.0.0.1:0", dir.path().join("store"));
        store(&mut cfg);
        let node = StoreNode::open(cfg, Arc::new(TcpTransport::new()))
            .await
            .expect("store");
        node.bootstrap_single().await.expect("bootstrap");
        node.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
        let mut acfg = ApiServerConfig::new("127.0.0.1:0".parse().expect("addr"), dir.path());
        acfg.insecure_http = true;
        acfg.bookmark_interval = Duration::from_millis(200);
        api(&mut acfg);
        let server = ApiServer::start(acfg, node).await.expect("api server");
        Api { server, _dir: dir }
    }

    fn admin(&self) -> String {
        self.server.state.auth.admin_token.clone()
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        ct: &str,
        body: Vec<u8>,
    ) -> hyper::Response<hyper::body::Incoming> {
        let tcp = tokio::net::TcpStream::connect(self.server.addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", ct);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        send.send_request(req.body(Full::new(Bytes::from(body))).expect("request"))
            .await
            .expect("response")
    }

    async fn call_as(&self, token: Option<&str>, method: &str, path: &str, ct: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("json")).unwrap_or_default();
        let resp = self.raw(method, path, token, ct, bytes).await;
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
        Resp { code, headers, body }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(Some(&self.admin()), method, path, "application/json", body)
            .await
    }

    async fn patch(&self, path: &str, ct: &str, body: Value) -> Resp {
        self.call_as(Some(&self.admin()), "PATCH", path, ct, Some(body)).await
    }

    /// Opens a watch and returns a function reading the next event.
    async fn watch(&self, path: &str) -> Watch {
        let resp = self
            .raw("GET", path, Some(&self.admin()), "application/json", Vec::new())
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        Watch {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }
}

struct Watch {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event, or None when the stream ends.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("each line is a JSON event"));
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event within 10 s")?;
            if let Ok(data) = frame.expect("frame").into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    })
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401_and_health_is_public() {
    let api = Api::start().await;
    let r = api.call_as(None, "GET", PODS, "application/json", None).await;
    assert_eq!((r.code, r.body["reason"].as_str()), (401, Some("Unauthorized")));
    let r = api.call_as(Some("wrong"), "GET", PODS, "application/json", None).await;
    assert_eq!(r.code, 401);
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(
            api.call_as(None, "GET", path, "application/json", None).await.code,
            200,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_users_read_but_cannot_write() {
    let api = Api::start().await;
    let viewer = api.server.state.auth.readonly_token.clone();
    assert_eq!(
        api.call_as(Some(&viewer), "GET", PODS, "application/json", None)
            .await
            .code,
        200
    );
    let r = api
        .call_as(
            Some(&viewer),
            "POST",
            PODS,
            "application/json",
            Some(pod("p", json!({}))),
        )
        .await;
    assert_eq!((r.code, r.body["reason"].as_str()), (403, Some("Forbidden")));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot create resource \"pods\""),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_and_the_conflicts_of_optimistic_concurrency() {
    let api = Api::start().await;
    let created = api.call("POST", PODS, Some(pod("web", json!({"app": "web"})))).await;
    assert_eq!(created.code, 201, "{}", created.body);
    let meta = &created.body["metadata"];
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(meta["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    let rv = meta["resourceVersion"].as_str().expect("rv").to_string();
    assert_eq!(created.body["status"]["phase"], "Pending");
    assert_eq!(created.body["spec"]["restartPolicy"], "Always", "defaults are applied");

    let again = api.call("POST", PODS, Some(pod("web", json!({})))).await;
    assert_eq!(
        (again.code, again.body["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    assert_eq!(again.body["details"]["name"], "web");

    let missing = api.call("GET", &format!("{PODS}/nope"), None).await;
    assert_eq!((missing.code, missing.body["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(missing.body["message"], "pods \"nope\" not found");
    assert_eq!(missing.body["kind"], "Status");

    let mut updated = created.body.clone();
    updated["metadata"]["labels"]["tier"] = json!("front");
    let ok = api.call("PUT", &format!("{PODS}/web"), Some(updated.clone())).await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert_ne!(ok.body["metadata"]["resourceVersion"].as_str(), Some(rv.as_str()));
    // The same update again carries the old resourceVersion: stale.
    let stale = api.call("PUT", &format!("{PODS}/web"), Some(updated)).await;
    assert_eq!((stale.code, stale.body["reason"].as_str()), (409, Some("Conflict")));
    // A patch with a stale resourceVersion is refused too.
    let stale = api
        .patch(
            &format!("{PODS}/web"),
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": rv, "labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(stale.code, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_get_422_with_a_cause_per_field() {
    let api = Api::start().await;
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c"}]}});
    let r = api.call("POST", PODS, Some(bad)).await;
    assert_eq!((r.code, r.body["reason"].as_str()), (422, Some("Invalid")));
    let fields: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(fields.contains(&"spec.containers[0].image"), "{fields:?}");
    let r = api.call("POST", PODS, None).await;
    assert_eq!((r.code, r.body["reason"].as_str()), (400, Some("BadRequest")));
    let r = api
        .call("POST", "/api/v1/namespaces/nowhere/pods", Some(pod("p", json!({}))))
        .await;
    assert_eq!(r.code, 404);
    assert_eq!(r.body["message"], "namespaces \"nowhere\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_three_mebibytes_get_413_before_parsing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = Api::start().await;
    // A raw socket: the server may answer (and stop reading) before the whole body is sent,
    // so the write may fail; the answer is read either way.
    let mut tcp = tokio::net::TcpStream::connect(api.server.addr).await.expect("connect");
    let len = 3 * 1024 * 1024 + 1;
    let head = format!(
        "POST {PODS} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n",
        api.admin()
    );
    tcp.write_all(head.as_bytes()).await.expect("headers");
    let _ = tcp.write_all(&vec![b'x'; len]).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("RequestEntityTooLarge") {
        match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("an answer")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("RequestEntityTooLarge"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_429_with_retry_after() {
    let api = Api::start_with(|_| {}, |c| c.max_mutating_in_flight = 0).await;
    let r = api.call("POST", PODS, Some(pod("p", json!({})))).await;
    assert_eq!((r.code, r.body["reason"].as_str()), (429, Some("TooManyRequests")));
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_labels_and_fields_and_page_with_continue() {
    let api = Api::start().await;
    for i in 0..10 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        assert_eq!(
            api.call(
                "POST",
                PODS,
                Some(pod(&format!("p{i}"), json!({"tier": tier, "n": i.to_string()})))
            )
            .await
            .code,
            201
        );
    }
    let names = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    let front = api
        .call("GET", &format!("{PODS}?labelSelector=tier%3Dfront"), None)
        .await;
    assert_eq!(names(&front), ["p0", "p2", "p4", "p6", "p8"]);
    let set = api
        .call("GET", &format!("{PODS}?labelSelector=n+in+(1,3),tier!=front"), None)
        .await;
    assert_eq!(names(&set), ["p1", "p3"]);
    let exists = api.call("GET", &format!("{PODS}?labelSelector=!tier"), None).await;
    assert!(names(&exists).is_empty());
    let by_name = api
        .call("GET", &format!("{PODS}?fieldSelector=metadata.name%3Dp7"), None)
        .await;
    assert_eq!(names(&by_name), ["p7"]);
    let phase = api
        .call(
            "GET",
            &format!("{PODS}?fieldSelector=status.phase%3DPending,metadata.name!%3Dp0"),
            None,
        )
        .await;
    assert_eq!(names(&phase).len(), 9);
    let bad = api
        .call("GET", &format!("{PODS}?fieldSelector=spec.bogus%3Dx"), None)
        .await;
    assert_eq!(bad.code, 400);

    // Pages of 3 matching items, all at the first page's revision.
    let mut seen = Vec::new();
    let mut path = format!("{PODS}?limit=3&labelSelector=tier%3Dfront");
    let mut rv = None;
    loop {
        let page = api.call("GET", &path, None).await;
        assert_eq!(page.code, 200, "{}", page.body);
        seen.extend(names(&page));
        let page_rv = page.body["metadata"]["resourceVersion"].as_str().map(str::to_string);
        if rv.is_none() {
            rv = page_rv.clone();
            // A write between pages does not show up in later pages.
            api.call("POST", PODS, Some(pod("p99", json!({"tier": "front"})))).await;
        }
        assert_eq!(page_rv, rv);
        match page.body["metadata"]["continue"].as_str() {
            Some(c) => path = format!("{PODS}?limit=3&labelSelector=tier%3Dfront&continue={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["p0", "p2", "p4", "p6", "p8"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_added_modified_deleted_with_selector_transitions() {
    let api = Api::start().await;
    let list = api.call("GET", PODS, None).await;
    let rv = list.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w = api
        .watch(&format!(
            "{PODS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb"
        ))
        .await;
    api.call("POST", PODS, Some(pod("a", json!({"app": "web"})))).await;
    api.call("POST", PODS, Some(pod("other", json!({"app": "db"})))).await;
    api.patch(
        &format!("{PODS}/a"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"v": "2"}}}),
    )
    .await;
    api.patch(
        &format!("{PODS}/a"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"app": "gone"}}}),
    )
    .await;
    api.patch(
        &format!("{PODS}/other"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .await;
    api.call("DELETE", &format!("{PODS}/other"), None).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let e = w.next().await.expect("event");
        got.push((
            e["type"].as_str().unwrap_or("").to_string(),
            e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string(),
        ));
    }
    let expect: Vec<(String, String)> = [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
        ("ADDED", "other"),
        ("DELETED", "other"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_without_a_resource_version_starts_with_the_current_state() {
    let api = Api::start().await;
    api.call("POST", PODS, Some(pod("old", json!({})))).await;
    let mut w = api.watch(&format!("{PODS}?watch=1")).await;
    let first = w.next().await.expect("event");
    assert_eq!(
        (first["type"].as_str(), first["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("old"))
    );
    api.call("POST", PODS, Some(pod("new", json!({})))).await;
    let second = w.next().await.expect("event");
    assert_eq!(second["object"]["metadata"]["name"], "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_are_sent_when_asked_and_timeouts_end_the_stream() {
    let api = Api::start().await;
    let rv = api.call("GET", PODS, None).await.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w = api
        .watch(&format!(
            "{PODS}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
        ))
        .await;
    let e = w.next().await.expect("a bookmark");
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["kind"], "Pod");
    assert!(e["object"]["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|r| r.parse::<u64>().unwrap_or(0) >= rv.parse::<u64>().unwrap_or(0)));
    // The stream ends at the timeout.
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "BOOKMARK");
    }
    // Without allowWatchBookmarks, none come.
    let mut w = api
        .watch(&format!("{PODS}?watch=1&resourceVersion={rv}&timeoutSeconds=1"))
        .await;
    assert!(w.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_revision_gets_410_gone() {
    let api = Api::start_with(|c| c.watch_window = 8, |_| {}).await;
    for i in 0..40 {
        api.call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(json!({"metadata": {"name": format!("c{i}")}})),
        )
        .await;
    }
    let mut w = api.watch(&format!("{PODS}?watch=1&resourceVersion=2")).await;
    let e = w.next().await.expect("an error event");
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        (e["object"]["code"].as_u64(), e["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_a_deleted_object_until_they_are_cleared() {
    let api = Api::start().await;
    let mut p = pod("held", json!({}));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.call("POST", PODS, Some(p)).await;
    let d = api.call("DELETE", &format!("{PODS}/held"), None).await;
    assert_eq!(d.code, 200);
    assert!(d.body["metadata"]["deletionTimestamp"].is_string());
    let still = api.call("GET", &format!("{PODS}/held"), None).await;
    assert_eq!(still.code, 200, "an object with finalizers stays");
    let cleared = api
        .patch(
            &format!("{PODS}/held"),
            "application/json-patch+json",
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        )
        .await;
    assert_eq!(cleared.code, 200, "{}", cleared.body);
    assert_eq!(api.call("GET", &format!("{PODS}/held"), None).await.code, 404);

    // Preconditions.
    let created = api.call("POST", PODS, Some(pod("pre", json!({})))).await;
    let r = api
        .call(
            "DELETE",
            &format!("{PODS}/pre"),
            Some(json!({"preconditions": {"uid": "not-it"}})),
        )
        .await;
    assert_eq!(r.code, 409);
    let uid = created.body["metadata"]["uid"].clone();
    let r = api
        .call(
            "DELETE",
            &format!("{PODS}/pre"),
            Some(json!({"preconditions": {"uid": uid}, "propagationPolicy": "Background"})),
        )
        .await;
    assert_eq!(r.code, 200);
    // Foreground deletion leaves the object with the foregroundDeletion finalizer.
    api.call("POST", PODS, Some(pod("fg", json!({})))).await;
    let r = api
        .call(
            "DELETE",
            &format!("{PODS}/fg"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(r.body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_bumps_on_spec_changes_only_and_status_is_a_subresource() {
    let api = Api::start().await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
    let r = api.call("POST", deploys, Some(d)).await;
    assert_eq!((r.code, r.body["metadata"]["generation"].as_i64()), (201, Some(1)));
    let r = api
        .patch(
            &format!("{deploys}/d"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(r.body["metadata"]["generation"], 1);
    let r = api
        .patch(
            &format!("{deploys}/d"),
            "application/strategic-merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:2"}]}}}}),
        )
        .await;
    assert_eq!(r.body["metadata"]["generation"], 2, "{}", r.body);
    assert_eq!(r.body["spec"]["template"]["spec"]["containers"][0]["image"], "i:2");
    // The main resource ignores status; /status changes only status.
    let r = api
        .patch(
            &format!("{deploys}/d"),
            "application/merge-patch+json",
            json!({"status": {"replicas": 7}}),
        )
        .await;
    assert!(r.body["status"]["replicas"].is_null());
    let r = api
        .patch(
            &format!("{deploys}/d/status"),
            "application/merge-patch+json",
            json!({"status": {"replicas": 7}, "spec": {"replicas": 9}}),
        )
        .await;
    assert_eq!(
        (
            r.body["status"]["replicas"].as_i64(),
            r.body["spec"]["replicas"].as_i64()
        ),
        (Some(7), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_binding_and_deletecollection_subresources_work() {
    let api = Api::start().await;
    let rcs = "/api/v1/namespaces/default/replicationcontrollers";
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "rc"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(api.call("POST", rcs, Some(rc)).await.code, 201);
    let s = api.call("GET", &format!("{rcs}/rc/scale"), None).await;
    assert_eq!(
        (
            s.body["kind"].as_str(),
            s.body["spec"]["replicas"].as_i64(),
            s.body["status"]["selector"].as_str()
        ),
        (Some("Scale"), Some(1), Some("app=rc"))
    );
    let s = api
        .patch(
            &format!("{rcs}/rc/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(s.body["spec"]["replicas"], 4);
    assert_eq!(
        api.call("GET", &format!("{rcs}/rc"), None).await.body["spec"]["replicas"],
        4
    );

    api.call("POST", PODS, Some(pod("b", json!({"del": "yes"})))).await;
    let bind = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"}, "target": {"kind": "Node", "name": "n1"}});
    let r = api.call("POST", &format!("{PODS}/b/binding"), Some(bind.clone())).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let p = api.call("GET", &format!("{PODS}/b"), None).await;
    assert_eq!(p.body["spec"]["nodeName"], "n1");
    assert_eq!(p.body["status"]["conditions"][0]["type"], "PodScheduled");
    let again = api.call("POST", &format!("{PODS}/b/binding"), Some(bind)).await;
    assert_eq!(again.code, 409);

    api.call("POST", PODS, Some(pod("c", json!({"del": "yes"})))).await;
    api.call("POST", PODS, Some(pod("keep", json!({})))).await;
    let r = api
        .call(
            "DELETE",
            &format!("{PODS}?labelSelector=del%3Dyes&gracePeriodSeconds=0"),
            None,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let left = api.call("GET", PODS, None).await;
    let names: Vec<&str> = left.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["keep"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_survive_a_round_trip() {
    let api = Api::start().await;
    let mut p = pod("u", json!({}));
    p["spec"]["futureField"] = json!({"nested": [1, 2, 3]});
    p["metadata"]["annotations"] = json!({"k": "v"});
    api.call("POST", PODS, Some(p)).await;
    let got = api.call("GET", &format!("{PODS}/u"), None).await;
    assert_eq!(got.body["spec"]["futureField"], json!({"nested": [1, 2, 3]}));
    let patched = api
        .patch(
            &format!("{PODS}/u"),
            "application/strategic-merge-patch+json",
            json!({"metadata": {"labels": {"x": "1"}}}),
        )
        .await;
    assert_eq!(patched.body["spec"]["futureField"], json!({"nested": [1, 2, 3]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_being_deleted_refuse_new_objects_and_system_ones_cannot_be_deleted() {
    let api = Api::start().await;
    assert_eq!(
        api.call(
            "POST",
            "/api/v1/namespaces",
            Some(json!({"metadata": {"name": "team"}}))
        )
        .await
        .code,
        201
    );
    let d = api.call("DELETE", "/api/v1/namespaces/team", None).await;
    assert_eq!(d.body["status"]["phase"], "Terminating");
    let r = api
        .call("POST", "/api/v1/namespaces/team/pods", Some(pod("p", json!({}))))
        .await;
    assert_eq!(r.code, 403);
    assert!(r.body["message"].as_str().unwrap_or("").contains("being terminated"));
    let r = api.call("DELETE", "/api/v1/namespaces/default", None).await;
    assert_eq!(r.code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_discovery_openapi_and_metrics_are_served() {
    let api = Api::start().await;
    api.call("POST", PODS, Some(pod("t", json!({})))).await;
    let resp = api
        .raw("GET", PODS, Some(&api.admin()), "application/json", Vec::new())
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let tcp = tokio::net::TcpStream::connect(api.server.addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .uri(PODS)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {}", api.admin()))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Full::new(Bytes::new()))
        .expect("request");
    let body = send
        .send_request(req)
        .await
        .expect("response")
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let table: Value = serde_json::from_slice(&body).expect("table");
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"][0]["cells"][0], "t");
    assert_eq!(table["rows"][0]["cells"][2], "Pending");

    let v1 = api.call("GET", "/api/v1", None).await;
    assert!(v1.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .any(|r| r["name"] == "pods"));
    let oa = api.call("GET", "/openapi/v3", None).await;
    assert!(oa.body["paths"]["apis/apps/v1"].is_object());
    let metrics = api.call("GET", "/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("apiserver_request_total{verb=\"create\",resource=\"pods\",code=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("apiserver_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_cluster_ips_and_node_ports_that_deletes_free() {
    let api = Api::start().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
    let a = api
        .call(
            "POST",
            svcs,
            Some(svc("a", json!({"ports": [{"port": 80}], "selector": {"app": "a"}}))),
        )
        .await;
    let b = api
        .call(
            "POST",
            svcs,
            Some(svc("b", json!({"ports": [{"port": 80}], "selector": {"app": "b"}}))),
        )
        .await;
    assert_eq!((a.code, b.code), (201, 201), "{} {}", a.body, b.body);
    let ip_a = a.body["spec"]["clusterIP"].as_str().expect("ip").to_string();
    let ip_b = b.body["spec"]["clusterIP"].as_str().expect("ip").to_string();
    assert_ne!(ip_a, ip_b);
    for ip in [&ip_a, &ip_b] {
        let o: Vec<u32> = ip.split('.').map(|x| x.parse().expect("octet")).collect();
        assert!(o[0] == 10 && (96..112).contains(&o[1]), "{ip} is in 10.96.0.0/12");
    }
    assert_eq!(a.body["spec"]["clusterIPs"], json!([ip_a]));

    // A requested IP that is taken is a 422 naming the field.
    let taken = api
        .call(
            "POST",
            svcs,
            Some(svc("c", json!({"clusterIP": ip_a, "ports": [{"port": 80}]}))),
        )
        .await;
    assert_eq!(taken.code, 422, "{}", taken.body);
    assert!(
        taken.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("provided IP is already allocated"),
        "{}",
        taken.body
    );

    // NodePorts: the seed's requested 30001, an automatic one, and a clash.
    let web = api.call("POST", svcs, Some(svc("myweb", json!({"type": "NodePort", "ports": [{"port": 8080, "nodePort": 30001, "name": "web"}, {"port": 9090, "name": "m"}]})))).await;
    assert_eq!(web.code, 201, "{}", web.body);
    let auto = web.body["spec"]["ports"][1]["nodePort"].as_i64().expect("allocated");
    assert!((30000..=32767).contains(&auto) && auto != 30001);
    let clash = api
        .call(
            "POST",
            svcs,
            Some(svc(
                "other",
                json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30001}]}),
            )),
        )
        .await;
    assert_eq!(clash.code, 422);
    assert_eq!(clash.body["details"]["causes"][0]["field"], "spec.ports[0].nodePort");
    let out = api
        .call(
            "POST",
            svcs,
            Some(svc(
                "out",
                json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 80}]}),
            )),
        )
        .await;
    assert_eq!(out.code, 422);

    // Updates keep the addresses; deletes free them.
    let upd = api
        .patch(
            &format!("{svcs}/myweb"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(upd.body["spec"]["ports"][0]["nodePort"], 30001);
    assert_eq!(upd.body["spec"]["clusterIP"], web.body["spec"]["clusterIP"]);
    assert_eq!(api.call("DELETE", &format!("{svcs}/myweb"), None).await.code, 200);
    let again = api
        .call(
            "POST",
            svcs,
            Some(svc(
                "other",
                json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30001}]}),
            )),
        )
        .await;
    assert_eq!(again.code, 201, "{}", again.body);
    let headless = api
        .call(
            "POST",
            svcs,
            Some(svc("h", json!({"clusterIP": "None", "selector": {"app": "h"}}))),
        )
        .await;
    assert_eq!(
        (headless.code, headless.body["spec"]["clusterIP"].as_str()),
        (201, Some("None")),
        "{}",
        headless.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_not_a_crash() {
    let api = Api::start().await;
    let depth = 10_000;
    let body = format!(
        "{{\"metadata\":{{\"name\":\"deep\"}},\"spec\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let resp = api
        .raw("POST", PODS, Some(&api.admin()), "application/json", body.into_bytes())
        .await;
    assert_eq!(resp.status().as_u16(), 400);
    let status: Value =
        serde_json::from_slice(&resp.into_body().collect().await.expect("body").to_bytes()).expect("status");
    assert!(
        status["message"].as_str().unwrap_or("").contains("recursion limit"),
        "{status}"
    );
    // The server is still serving.
    assert_eq!(api.call("GET", PODS, None).await.code, 200);
}
