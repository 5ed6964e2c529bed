//! The memcache protocol over TLS (`[server.tls]`): a second listener whose connections are
//! served, after the handshake, by exactly the same code as plaintext ones.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::config::TlsConfig;
use crate::connection;
use crate::shared::Shared;

/// Accepts TLS handshakes with the configured certificate chain and key.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl Tls {
    /// Loads the certificate chain and private key named by `config`.
    pub fn load(config: &TlsConfig) -> anyhow::Result<Tls> {
        let certificates = load_certificates(&config.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|error| {
            anyhow::anyhow!(
                "cannot read a private key from key_file {}: {error}",
                config.key_file.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .with_context(|| {
                format!(
                    "the key in {} does not fit the certificate in {}",
                    config.key_file.display(),
                    config.cert_file.display()
                )
            })?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server_config)),
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// Completes the handshake, then serves the memcache connection. A handshake that fails,
    /// times out or is cut by shutdown only ends this connection.
    pub async fn serve(self, stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
        let handshake = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream));
        let outcome = tokio::select! {
            outcome = handshake => outcome,
            () = shared.shutdown.cancelled() => return,
        };
        match outcome {
            Ok(Ok(stream)) => connection::serve(stream, peer, shared).await,
            Ok(Err(error)) => debug!(%error, "TLS handshake failed"),
            Err(_) => debug!(
                timeout = ?self.handshake_timeout,
                "TLS handshake timed out"
            ),
        }
    }
}

fn load_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let unreadable = |error: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot read certificates from cert_file {}: {error}",
            path.display()
        )
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(&error))?;
    if certificates.is_empty() {
        return Err(unreadable(&io::Error::other("no CERTIFICATE block")));
    }
    Ok(certificates)
}
