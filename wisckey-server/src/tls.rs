//! TLS with rustls and its ring backend (no cmake, no OpenSSL): the
//! server's configuration from a certificate and key, the client's from
//! the certificate authority it trusts.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::ConfigError;

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError(format!("tls: {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError(format!("tls: {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "tls: {}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The server side: serve with the chain in `cert` and the key in `key`
/// (PEM files).
///
/// # Errors
/// [`ConfigError`] naming the file that cannot be read or parsed, or a
/// key that does not match the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ConfigError> {
    let chain = certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ConfigError(format!("tls: {}: {e}", key.display())))?;
    let cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ConfigError(format!("tls: certificate and key: {e}")))?;
    Ok(Arc::new(cfg))
}

/// The client side: trust the certificate authority in `ca` (PEM) and
/// nothing else.
///
/// # Errors
/// [`ConfigError`] naming the file that cannot be read or parsed.
pub fn client_config(ca: &Path) -> Result<ClientConfig, ConfigError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .map_err(|e| ConfigError(format!("tls: {}: {e}", ca.display())))?;
    }
    let cfg = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

/// An HTTP client for peers or tools. `https` URLs trust the certificate
/// authority in `ca` only (none when `ca` is `None`); `http` URLs are
/// plain.
///
/// # Errors
/// [`ConfigError`] when the CA file is unusable or the client cannot be
/// built.
pub fn http_client(ca: Option<&Path>) -> Result<reqwest::Client, ConfigError> {
    let mut b = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .no_proxy();
    // Always rustls with ring: with no CA given, https trusts nothing
    // (there is no process-wide crypto provider to fall back on).
    let tls = match ca {
        Some(ca) => client_config(ca)?,
        None => ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError(format!("tls: {e}")))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    b = b.tls_backend_preconfigured(tls);
    b.build()
        .map_err(|e| ConfigError(format!("http client: {e}")))
}
