//! The Kubernetes-shaped API server: REST over HTTPS (or loopback HTTP when asked), bearer
//! tokens, discovery, Table printing, watches, `/metrics` and health endpoints, in front of
//! the replicated store.
//!
//! Request path: limits (body size, requests in flight) → authentication → routing (parse
//! the path against the resource table) → authorization → the verb's handler → a JSON
//! object or a `kind: Status` error.

pub mod auth;
pub mod discovery;
mod handlers;
pub mod metrics;
pub mod object;
pub mod openapi;
pub mod registry;
pub mod request;
pub mod services;
pub mod status;
pub mod table;
pub mod tls;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::{Op, StoreNode, Txn};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::auth::{authorize, Auth, Decision, User};
pub use self::handlers::SYSTEM_NAMESPACES;
use self::metrics::Metrics;
use self::request::{parse_path, verb, ApiPath, Query, Target};
use self::status::ApiError;
use self::watch::Render;

/// Bodies above this are refused with 413 before they are parsed (Kubernetes' limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A JSON response body.
pub fn json_body(v: &Value) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).expect("JSON values always serialize"),
    )
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, json_body(v)).into_response()
}

/// What every request handler shares.
pub struct ApiState {
    pub store: StoreNode,
    pub auth: Auth,
    pub metrics: Metrics,
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Where Services get ClusterIPs and NodePorts.
    pub service_ranges: services::ServiceRanges,
    /// Watch events decoded once for all watchers.
    events: Arc<watch::EventCache>,
    mutating: Semaphore,
    readonly: Semaphore,
}

/// How to run the API server.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    pub listen: SocketAddr,
    /// Where certificates, tokens and the kubeconfig live.
    pub data_dir: PathBuf,
    /// Serve plain HTTP (only allowed on a loopback address).
    pub insecure_http: bool,
    /// Extra names for the serving certificate and the kubeconfig's server URL.
    pub advertise: Vec<String>,
    pub max_mutating_in_flight: usize,
    pub max_readonly_in_flight: usize,
    pub bookmark_interval: Duration,
    pub service_ranges: services::ServiceRanges,
}

impl ApiServerConfig {
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> ApiServerConfig {
        ApiServerConfig {
            listen,
            data_dir: data_dir.into(),
            insecure_http: false,
            advertise: Vec::new(),
            max_mutating_in_flight: 200,
            max_readonly_in_flight: 400,
            bookmark_interval: Duration::from_secs(10),
            service_ranges: services::ServiceRanges::default(),
        }
    }
}

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("plain HTTP is only allowed on a loopback address, not {0}; drop --insecure-http to serve HTTPS")]
    InsecureNotLoopback(SocketAddr),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot create the system namespaces: {0}")]
    Bootstrap(String),
}

/// A running API server.
pub struct ApiServer {
    pub state: Arc<ApiState>,
    pub addr: SocketAddr,
    pub url: String,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    pub ca_pem: Option<String>,
}

impl ApiServer {
    /// Sets up credentials, writes the kubeconfig, creates the system namespaces, and
    /// starts serving.
    pub async fn start(cfg: ApiServerConfig, store: StoreNode) -> Result<ApiServer, ApiServerError> {
        if cfg.insecure_http && !cfg.listen.ip().is_loopback() {
            return Err(ApiServerError::InsecureNotLoopback(cfg.listen));
        }
        let auth = Auth::load_or_create(&cfg.data_dir.join("auth"))?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ApiServerError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ApiServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
        let host = if addr.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        let state = Arc::new(ApiState {
            store,
            auth: auth.clone(),
            metrics: Metrics::default(),
            bookmark_interval: cfg.bookmark_interval,
            service_ranges: cfg.service_ranges.clone(),
            events: Arc::default(),
            mutating: Semaphore::new(cfg.max_mutating_in_flight),
            readonly: Semaphore::new(cfg.max_readonly_in_flight),
        });
        let (url, ca_pem) = if cfg.insecure_http {
            let url = format!("http://{}", SocketAddr::new(host, addr.port()));
            tokio::spawn(serve_plain(listener, state.clone()));
            (url, None)
        } else {
            let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]), host];
            let mut dns = vec![
                "localhost".to_string(),
                "kubernetes".into(),
                "kubernetes.default".into(),
                "kubernetes.default.svc".into(),
            ];
            for name in &cfg.advertise {
                match name.parse::<IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => dns.push(name.clone()),
                }
            }
            if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
                let h = h.trim();
                if !h.is_empty() {
                    dns.push(h.to_string());
                }
            }
            ips.sort();
            ips.dedup();
            let certs = tls::ensure_certs(&cfg.data_dir.join("tls"), &ips, &dns)?;
            let config = tls::server_config(&certs)?;
            tokio::spawn(serve_tls(listener, config, state.clone()));
            (
                format!("https://{}", SocketAddr::new(host, addr.port())),
                Some(certs.ca_pem),
            )
        };
        let kubeconfig = cfg.data_dir.join("kubeconfig.yaml");
        tls::write_private(
            &kubeconfig,
            &tls::kubeconfig(&url, ca_pem.as_deref(), &auth.admin_token, "admin"),
        )?;
        tls::write_private(
            &cfg.data_dir.join("kubeconfig-readonly.yaml"),
            &tls::kubeconfig(&url, ca_pem.as_deref(), &auth.readonly_token, "viewer"),
        )?;
        state.bootstrap_namespaces().await?;
        Ok(ApiServer {
            state,
            addr,
            url,
            kubeconfig,
            ca_pem,
        })
    }
}

impl ApiState {
    /// Creates the namespaces that always exist, if they do not yet.
    async fn bootstrap_namespaces(&self) -> Result<(), ApiServerError> {
        let nsr = registry::find("", "v1", "namespaces").expect("namespaces are served");
        let mut ops = Vec::new();
        for ns in SYSTEM_NAMESPACES {
            let mut obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": object::now(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
            });
            object::apply_defaults(nsr, &mut obj);
            ops.push(Txn::single(Op::create(nsr.key(None, ns), object::encode(&obj))));
        }
        // Create-if-absent: a restart or a second server finds them there and changes nothing.
        self.store
            .wait_for_leader(Duration::from_secs(30))
            .await
            .map_err(|e| ApiServerError::Bootstrap(e.to_string()))?;
        self.store
            .write_batch(ops)
            .await
            .map_err(|e| ApiServerError::Bootstrap(e.to_string()))?;
        Ok(())
    }
}

async fn serve_plain(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(io, service(state))
                .await;
        });
    }
}

async fn serve_tls(listener: TcpListener, config: Arc<rustls::ServerConfig>, state: Arc<ApiState>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await else {
                return;
            };
            let Ok(tls) = tls else { return };
            let io = hyper_util::rt::TokioIo::new(tls);
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(io, service(state))
                .await;
        });
    }
}

fn service(
    state: Arc<ApiState>,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = futures::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>,
> {
    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = state.clone();
        let fut: futures::future::BoxFuture<'static, _> =
            Box::pin(async move { Ok::<_, std::convert::Infallible>(state.serve(req.map(Body::new)).await) });
        fut
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the client asked for a Table (`kubectl get`).
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

impl ApiState {
    /// Serves one request.
    pub async fn serve(self: &Arc<Self>, req: Request<Body>) -> Response {
        let started = Instant::now();
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let (resp, verb_name, resource) = self.route(req).await;
        let resp = resp.unwrap_or_else(IntoResponse::into_response);
        if verb_name != "watch" {
            self.metrics
                .request(verb_name, &resource, resp.status().as_u16(), started.elapsed());
        }
        tracing::debug!(%method, %path, code = resp.status().as_u16(), took = ?started.elapsed(), "request");
        resp
    }

    async fn route(self: &Arc<Self>, req: Request<Body>) -> (Result<Response, ApiError>, &'static str, String) {
        let path = req.uri().path().to_string();
        // Public endpoints.
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz" | "/livez") => {
                return (Ok((StatusCode::OK, "ok").into_response()), "get", "healthz".into())
            }
            (&Method::GET, "/readyz") => {
                let r = if self.store.leader().is_some() {
                    Ok((StatusCode::OK, "ok").into_response())
                } else {
                    Err(ApiError::unavailable("the store has no leader"))
                };
                return (r, "get", "readyz".into());
            }
            (&Method::GET, "/version") => {
                return (
                    Ok(json_response(StatusCode::OK, &discovery::version())),
                    "get",
                    "version".into(),
                )
            }
            _ => {}
        }
        let user = match bearer(req.headers()).and_then(|t| self.auth.authenticate(t)) {
            Some(u) => u,
            None => return (Err(ApiError::unauthorized()), "unknown", String::new()),
        };
        let q = match Query::parse(req.uri().query()) {
            Ok(q) => q,
            Err(e) => return (Err(e), "unknown", String::new()),
        };
        match (req.method(), path.as_str()) {
            (&Method::GET, "/metrics") => {
                return (
                    Ok((
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        self.metrics.render(self.store.revision()),
                    )
                        .into_response()),
                    "get",
                    "metrics".into(),
                )
            }
            (&Method::GET, "/openapi/v2") => {
                return (
                    Ok(([(header::CONTENT_TYPE, openapi::V2_CONTENT_TYPE)], Vec::new()).into_response()),
                    "get",
                    "openapi".into(),
                )
            }
            (&Method::GET, p) if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => {
                return (
                    openapi::serve(p).map(|v| json_response(StatusCode::OK, &v)),
                    "get",
                    "openapi".into(),
                )
            }
            _ => {}
        }
        let parsed = match parse_path(&path) {
            Ok(p) => p,
            Err(e) => return (Err(e), "unknown", String::new()),
        };
        let t = match parsed {
            ApiPath::Root { core: true } => {
                return (
                    Ok(json_response(StatusCode::OK, &discovery::core_versions())),
                    "get",
                    "discovery".into(),
                )
            }
            ApiPath::Root { core: false } => {
                return (
                    Ok(json_response(StatusCode::OK, &discovery::group_list())),
                    "get",
                    "discovery".into(),
                )
            }
            ApiPath::Group(g) => {
                let r = discovery::group(&g)
                    .map(|v| json_response(StatusCode::OK, &v))
                    .ok_or_else(|| ApiError::not_found_path(&path));
                return (r, "get", "discovery".into());
            }
            ApiPath::GroupVersion { group, version } => {
                return (
                    Ok(json_response(
                        StatusCode::OK,
                        &discovery::resource_list(&group, &version),
                    )),
                    "get",
                    "discovery".into(),
                )
            }
            ApiPath::Resource(t) => t,
        };
        let watch = q.flag("watch");
        let verb_name = verb(req.method(), &t, watch);
        let resource = match &t.subresource {
            Some(s) => format!("{}/{s}", t.resource.plural),
            None => t.resource.plural.to_string(),
        };
        let result = self.resource_request(req, t, q, &user, verb_name).await;
        (result, verb_name, resource)
    }

    async fn resource_request(
        self: &Arc<Self>,
        req: Request<Body>,
        t: Target,
        q: Query,
        user: &User,
        verb_name: &'static str,
    ) -> Result<Response, ApiError> {
        let decision = authorize(user, verb_name, &t)?;
        // Long-running watches are not counted against the in-flight limits.
        let _permit = match verb_name {
            "watch" => None,
            "get" | "list" => Some(self.readonly.try_acquire().map_err(|_| ApiError::too_many_requests())?),
            _ => Some(self.mutating.try_acquire().map_err(|_| ApiError::too_many_requests())?),
        };
        let table = wants_table(req.headers());
        let (parts, body) = req.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        {
            if len > MAX_BODY {
                return Err(ApiError::too_large(MAX_BODY));
            }
        }
        let mut bytes = to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::too_large(MAX_BODY))?;
        // The server works on JSON. kubectl's typed commands (create configmap, create
        // deployment, …) send protobuf and do not fall back, so their bodies become JSON here;
        // they accept JSON responses.
        let method = &parts.method;
        if matches!(*method, Method::POST | Method::PUT | Method::DELETE)
            && !bytes.is_empty()
            && is_protobuf(&content_type)
        {
            let object = gantry_api::protobuf::decode(&bytes)
                .map_err(|e| ApiError::bad_request(format!("the protobuf request body could not be decoded: {e}")))?;
            bytes = serde_json::to_vec(&object).expect("a JSON value serializes").into();
        } else if matches!(*method, Method::POST | Method::PUT) && !bytes.is_empty() && !content_type.contains("json") {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, {PROTOBUF} (got {content_type})"
            )));
        }
        if let Decision::IfPodBoundTo(node) = &decision {
            self.check_pod_bound(&t, &parts.method, &bytes, node).await?;
        }
        let r = t.resource;
        let sub = t.subresource.as_deref();
        let created = |v: Value| json_response(StatusCode::CREATED, &v);
        let ok = |v: Value| json_response(StatusCode::OK, &v);
        match (&parts.method, t.name.is_some(), sub) {
            (&Method::GET, false, None) if verb_name == "watch" => {
                self.watch(&t, &q, if table { Render::Table } else { Render::Object })
                    .await
            }
            (&Method::GET, false, None) => {
                let list = self.list(&t, &q).await?;
                if table {
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    let rv = list["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let cont = list["metadata"]["continue"].as_str().map(str::to_string);
                    Ok(ok(table::table(
                        r,
                        &items,
                        &rv,
                        cont.as_deref(),
                        q.get("includeObject").unwrap_or("Metadata"),
                    )))
                } else {
                    Ok(ok(list))
                }
            }
            (&Method::POST, false, None) => Ok(created(self.create(&t, parse_json(&bytes)?).await?)),
            (&Method::DELETE, false, None) => Ok(ok(self
                .delete_collection(&t, &parse_optional_json(&bytes)?, &q)
                .await?)),
            (&Method::GET, true, None | Some("status")) => {
                let (obj, _) = self
                    .get_object(r, t.namespace.as_deref(), t.name.as_deref().unwrap_or_default())
                    .await?;
                if table && sub.is_none() {
                    let rv = object::meta_str(&obj, "resourceVersion")
                        .unwrap_or_default()
                        .to_string();
                    Ok(ok(table::table(
                        r,
                        &[obj],
                        &rv,
                        None,
                        q.get("includeObject").unwrap_or("Metadata"),
                    )))
                } else {
                    Ok(ok(obj))
                }
            }
            (&Method::PUT, true, None | Some("status") | Some("finalize")) => {
                Ok(ok(self.update(&t, parse_json(&bytes)?).await?))
            }
            (&Method::PATCH, true, None | Some("status")) => Ok(ok(self.patch(&t, &content_type, &bytes).await?)),
            (&Method::DELETE, true, None) => Ok(ok(self.delete(&t, &parse_optional_json(&bytes)?, &q).await?)),
            (&Method::GET, true, Some("scale")) => Ok(ok(self.get_scale(&t).await?)),
            (&Method::PUT, true, Some("scale")) => {
                Ok(ok(self.update_scale(&t, Some(parse_json(&bytes)?), None).await?))
            }
            (&Method::PATCH, true, Some("scale")) => {
                Ok(ok(self.update_scale(&t, None, Some((&content_type, &bytes))).await?))
            }
            (&Method::POST, true, Some("binding")) => {
                self.bind(&t, parse_json(&bytes)?).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &status::success(r, t.name.as_deref().unwrap_or_default(), 201),
                ))
            }
            (&Method::GET, true, Some("log")) => Err(ApiError::unavailable(format!(
                "logs of pod \"{}\" come from its node's agent, which this server cannot reach yet",
                t.name.as_deref().unwrap_or_default()
            ))),
            (m, _, _) => Err(ApiError::method_not_allowed(format!(
                "{m} is not supported on {}{}",
                r.plural,
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ))),
        }
    }

    /// For node credentials: the pod written must be bound to that node.
    async fn check_pod_bound(&self, t: &Target, method: &Method, body: &[u8], node: &str) -> Result<(), ApiError> {
        let bound = if *method == Method::POST {
            parse_json(body)?
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            let (pod, _) = self
                .get_object(
                    t.resource,
                    t.namespace.as_deref(),
                    t.name.as_deref().unwrap_or_default(),
                )
                .await?;
            pod.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if bound.as_deref() == Some(node) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "pods \"{}\" is forbidden: node \"{node}\" can only change pods bound to it",
                t.name.as_deref().unwrap_or_default()
            )))
        }
    }
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// Whether a Content-Type names Kubernetes protobuf (parameters aside).
fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(PROTOBUF))
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; an object is required",
        ));
    }
    // serde_json bounds nesting depth (128), so a deeply nested body is refused, not a crash.
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn parse_optional_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        parse_json(bytes)
    }
}
