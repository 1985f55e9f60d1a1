//! https beside http on the same loopback port, for access control: Go clients (kubectl, helm)
//! send a kubeconfig's credentials only to an https server, while kube-rs clients built
//! without a TLS stack keep using http. A connection whose first byte opens a TLS handshake
//! gets TLS with the fixed test certificate in `tls/` (see its README); any other is plain.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The authority that signed the server's certificate, for clients to trust
/// (`certificate-authority-data`).
pub const CA_PEM: &str = include_str!("../tls/ca.pem");
const SERVER_PEM: &str = include_str!("../tls/server.pem");
const SERVER_KEY_PEM: &str = include_str!("../tls/server-key.pem");

/// The first byte of a TLS record carrying a handshake.
const HANDSHAKE: u8 = 0x16;
/// A client that opens a connection and says nothing is dropped after this.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the built-in test certificate in host/apiserver/tls does not parse: {0}")]
    Certificate(String),
    #[error("cannot configure TLS with the built-in test certificate: {0}")]
    Config(#[from] rustls::Error),
}

fn acceptor() -> Result<TlsAcceptor, TlsError> {
    let bad = |e: rustls::pki_types::pem::Error| TlsError::Certificate(e.to_string());
    let certs = CertificateDer::pem_slice_iter(SERVER_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).map_err(bad)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener answering TLS and plain connections alike. Handshakes run concurrently; one
/// slow client holds up no other.
pub struct DualListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    pending: JoinSet<Option<(Connection, SocketAddr)>>,
}

impl DualListener {
    pub fn new(listener: TcpListener) -> Result<Self, TlsError> {
        Ok(Self {
            listener,
            acceptor: acceptor()?,
            pending: JoinSet::new(),
        })
    }
}

/// A TLS or a plain connection.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Reads the first byte without consuming it, then handshakes if it opens one. `None` for a
/// client that goes away or fails its handshake.
async fn open(acceptor: TlsAcceptor, stream: TcpStream) -> Option<Connection> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == HANDSHAKE => {
            match tokio::time::timeout(FIRST_BYTE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(Connection::Tls(Box::new(tls))),
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    None
                }
                Err(_) => None,
            }
        }
        Ok(Ok(_)) => Some(Connection::Plain(stream)),
        _ => None,
    }
}

impl axum::serve::Listener for DualListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let acceptor = self.acceptor.clone();
                        self.pending
                            .spawn(async move { open(acceptor, stream).await.map(|c| (c, addr)) });
                    }
                    // Out of descriptors or the like: wait rather than spin, as axum does.
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                },
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_certificate_configures_tls() {
        acceptor().expect("the test certificate and key parse and match");
        assert!(CA_PEM.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
