//! The server's certificates and the kubeconfig it writes: on first start a CA and a
//! serving certificate (with the IP and DNS names the server is reached at) are created
//! under `<data-dir>/tls`; later starts reuse the CA and re-issue the serving certificate
//! when the names it must carry change.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors setting up TLS, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("invalid certificate or key in {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The CA and serving certificate, as PEM.
pub struct ServerCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            what: "cannot read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TlsError::Io {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(contents.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn gen(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// The CA's certificate parameters; issuing needs only its name and key.
fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "gantry-ca");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    Ok(params)
}

/// Loads or creates the CA and a serving certificate valid for `ips` and `dns`.
pub fn ensure_certs(dir: &Path, ips: &[IpAddr], dns: &[String]) -> Result<ServerCerts, TlsError> {
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (ca_pem, ca_key_pem) = match (read(&ca_crt)?, read(&ca_key)?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = KeyPair::generate().map_err(gen)?;
            let cert = ca_params()?.self_signed(&key).map_err(gen)?;
            let (c, k) = (cert.pem(), key.serialize_pem());
            write_private(&ca_key, &k)?;
            write_private(&ca_crt, &c)?;
            (c, k)
        }
    };
    let names_file = dir.join("server.names");
    let names = format!(
        "{}\n{}",
        ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","),
        dns.join(",")
    );
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    if let (Some(c), Some(k), Some(n)) = (read(&crt)?, read(&key)?, read(&names_file)?) {
        if n == names {
            return Ok(ServerCerts {
                ca_pem,
                cert_pem: c,
                key_pem: k,
            });
        }
    }
    let ca_signing = KeyPair::from_pem(&ca_key_pem).map_err(|e| TlsError::Invalid {
        path: ca_key.clone(),
        reason: e.to_string(),
    })?;
    // The issuer is the CA: same name, same key (its certificate is already on disk).
    let issuer = Issuer::new(ca_params()?, ca_signing);
    let server_key = KeyPair::generate().map_err(gen)?;
    let mut params = CertificateParams::new(dns.to_vec()).map_err(gen)?;
    params.distinguished_name.push(DnType::CommonName, "gantry-apiserver");
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&server_key, &issuer).map_err(gen)?;
    let (c, k) = (cert.pem(), server_key.serialize_pem());
    write_private(&key, &k)?;
    write_private(&crt, &c)?;
    write_private(&names_file, &names)?;
    Ok(ServerCerts {
        ca_pem,
        cert_pem: c,
        key_pem: k,
    })
}

/// A rustls server configuration for the certificates, offering HTTP/2 and HTTP/1.1.
pub fn server_config(certs: &ServerCerts) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        path: PathBuf::from("server.crt"),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A kubeconfig that kubectl uses as is.
pub fn kubeconfig(server_url: &str, ca_pem: Option<&str>, token: &str, user: &str) -> String {
    let cluster = match ca_pem {
        Some(ca) => format!(
            "    server: {server_url}\n    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(ca)
        ),
        None => format!("    server: {server_url}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gantry\n  cluster:\n{cluster}users:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: gantry\n  context:\n    cluster: gantry\n    user: {user}\n    namespace: default\ncurrent-context: gantry\npreferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_created_once_and_reissued_when_names_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("ip")];
        let a = ensure_certs(dir.path(), &ips, &["localhost".into()]).expect("create");
        let b = ensure_certs(dir.path(), &ips, &["localhost".into()]).expect("reuse");
        assert_eq!(a.cert_pem, b.cert_pem);
        let c = ensure_certs(dir.path(), &ips, &["localhost".into(), "gantry.example".into()]).expect("reissue");
        assert_ne!(a.cert_pem, c.cert_pem);
        assert_eq!(a.ca_pem, c.ca_pem, "the CA stays");
        server_config(&c).expect("rustls accepts the certificate");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("ca.key"))
                .expect("stat")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
