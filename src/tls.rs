//! TLS for the ports this process serves: the gRPC port, whose certificate comes from files and
//! is renewed in place without a restart, and the BBB emulator's. Also a throwaway CA, for
//! `dev` and the tests. Nothing here knows gRPC or HTTP.

use crate::secret::Secret;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use std::{
    fmt, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::watch,
    task::JoinSet,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// How often the certificate files are read again. Polling, not file events: Kubernetes renews
/// a mounted Secret by swapping a symlink two levels up, which inotify watches on the files
/// miss; two reads of a few KiB every few seconds cost nothing, and cert-manager renews weeks
/// before expiry.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Longest a TLS handshake may take: anyone may connect, and a half-open handshake holds memory
/// and one of the `MAX_HANDSHAKES` places.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once per port; past that, the port stops accepting until one ends
/// (callers wait in the kernel's backlog instead of being refused).
const MAX_HANDSHAKES: usize = 256;

/// The PEM files of a TLS port: the certificate chain (server certificate first) and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What is wrong with a certificate or key. Our words only: a PEM parser's message may quote
/// the file, and a key file's text is the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PemProblem {
    #[error("not PEM, or a damaged PEM block")]
    CertificateNotPem,
    #[error("no CERTIFICATE block in it")]
    NoCertificate,
    #[error("the certificate cannot be parsed")]
    BadCertificate,
    #[error("not PEM, or a damaged PEM block")]
    KeyNotPem,
    #[error("no PRIVATE KEY block in it")]
    NoKey,
    #[error(
        "the private key is of a kind TLS here cannot use (RSA, ECDSA P-256/P-384 or Ed25519 are)"
    )]
    UnusableKey,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
}

impl PemProblem {
    fn in_key(self) -> bool {
        matches!(
            self,
            Self::KeyNotPem | Self::NoKey | Self::UnusableKey | Self::KeyMismatch
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: PemProblem },
}

/// A certificate chain with its private key, ready to serve. `Debug` shows neither.
#[derive(Clone)]
pub struct Identity(Arc<CertifiedKey>);

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Identity([certificate and key])")
    }
}

impl Identity {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, PemProblem> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PemProblem::CertificateNotPem)?;
        if chain.is_empty() {
            return Err(PemProblem::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| match err {
            rustls::pki_types::pem::Error::NoItemsFound => PemProblem::NoKey,
            _ => PemProblem::KeyNotPem,
        })?;
        let key = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|_| PemProblem::UnusableKey)?;
        let certified = CertifiedKey::new(chain, key);
        // A renewal caught between writing the certificate and the key shows up here.
        certified.keys_match().map_err(|err| match err {
            rustls::Error::InconsistentKeys(_) => PemProblem::KeyMismatch,
            _ => PemProblem::BadCertificate,
        })?;
        Ok(Self(Arc::new(certified)))
    }

    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let cert = read(&files.cert)?;
        let key = read(&files.key)?;
        Self::from_pem(&cert, &key).map_err(|problem| files.invalid(problem))
    }

    /// A server configuration that always presents this identity.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        server_config(Arc::new(self.clone()), alpn)
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl TlsFiles {
    fn invalid(&self, problem: PemProblem) -> TlsError {
        let path = if problem.in_key() {
            &self.key
        } else {
            &self.cert
        };
        TlsError::Invalid {
            path: path.clone(),
            problem,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// TLS 1.2 and 1.3 with ring's suites, no client certificates, the given ALPN protocols.
fn server_config(resolver: Arc<dyn ResolvesServerCert>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring's provider supports rustls' default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The identity of a port whose files are renewed in place: every handshake gets the newest
/// pair that loaded, and a pair that does not load leaves the previous one serving.
pub struct ReloadingIdentity {
    files: TlsFiles,
    current: RwLock<Identity>,
    /// The bytes `current` was loaded from at start.
    loaded: (Vec<u8>, Vec<u8>),
}

impl fmt::Debug for ReloadingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingIdentity")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingIdentity {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .resolve(hello)
    }
}

/// What the files held at a look: their bytes, or which one could not be read and why.
type Seen = Result<(Vec<u8>, Vec<u8>), (PathBuf, io::ErrorKind)>;

impl ReloadingIdentity {
    /// Loads the files once; failing here is a start error.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let cert = read(&files.cert)?;
        let key = read(&files.key)?;
        let identity = Identity::from_pem(&cert, &key).map_err(|problem| files.invalid(problem))?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(identity),
            loaded: (cert, key),
        }))
    }

    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        server_config(self.clone(), alpn)
    }

    fn look(&self) -> Seen {
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| (path.clone(), e.kind()));
        Ok((read(&self.files.cert)?, read(&self.files.key)?))
    }

    /// Reads the files every `RELOAD_INTERVAL` until `stopped`, and serves a changed pair once it
    /// loads. A pair that does not load is said once (WARN) and the previous one keeps serving:
    /// a renewal is usually caught half-written only for a moment.
    pub async fn watch(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut serving: Seen = Ok(self.loaded.clone());
        let mut refused: Option<Seen> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_INTERVAL) => {}
                _ = stopped.changed() => return,
            }
            // Small files on a local (usually in-memory) volume: reading them in place is
            // cheaper than a trip to the blocking pool.
            let seen = self.look();
            if seen == serving || refused.as_ref() == Some(&seen) {
                continue;
            }
            let loaded = match &seen {
                Ok((cert, key)) => {
                    Identity::from_pem(cert, key).map_err(|problem| self.files.invalid(problem))
                }
                Err((path, kind)) => Err(TlsError::Read {
                    path: path.clone(),
                    source: (*kind).into(),
                }),
            };
            match loaded {
                Ok(identity) => {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = identity;
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    serving = seen;
                    refused = None;
                }
                Err(err) => {
                    tracing::warn!(%err, "renewed TLS certificate or key does not load; still serving the previous one");
                    refused = Some(seen);
                }
            }
        }
    }
}

/// TLS handshakes under way: each in a task of its own, so a slow one holds up no other; each
/// ended after `HANDSHAKE_TIMEOUT`; at most `MAX_HANDSHAKES` at once.
pub struct Handshakes<IO> {
    acceptor: TlsAcceptor,
    running: JoinSet<Option<(TlsStream<IO>, SocketAddr)>>,
}

impl<IO> Handshakes<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            acceptor: TlsAcceptor::from(config),
            running: JoinSet::new(),
        }
    }

    /// Whether another connection may start its handshake now.
    pub fn has_room(&self) -> bool {
        self.running.len() < MAX_HANDSHAKES
    }

    pub fn start(&mut self, io: IO, peer: SocketAddr) {
        let accept = self.acceptor.accept(io);
        self.running.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                // Scanners, plaintext clients and clients that distrust us: theirs to report.
                Ok(Err(err)) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            }
        });
    }

    /// The next connection whose handshake succeeded. Pending while none has; with nothing
    /// under way that registers no wake-up, so the caller must also be waiting for new
    /// connections.
    pub fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<(TlsStream<IO>, SocketAddr)> {
        loop {
            match self.running.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(done)))) => return Poll::Ready(done),
                // A failed handshake, or its task ended with the runtime.
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A certificate authority made on the spot, for `dev` and the tests: its key lives only in
/// this process.
pub struct ThrowawayCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

/// A server certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Secret,
}

impl Issued {
    pub fn identity(&self) -> Result<Identity, PemProblem> {
        Identity::from_pem(self.cert_pem.as_bytes(), self.key_pem.expose().as_bytes())
    }
}

impl ThrowawayCa {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM: what a client is told to trust.
    pub fn certificate_pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (host names or IP addresses), with a new key.
    pub fn issue(&self, names: &[&str]) -> Result<Issued, rcgen::Error> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "eventyay-bbb throwaway server");
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_problems_are_told_apart() {
        let ca = ThrowawayCa::new("test CA").unwrap();
        let one = ca.issue(&["localhost"]).unwrap();
        let other = ca.issue(&["localhost"]).unwrap();
        assert!(one.identity().is_ok());
        let key = one.key_pem.expose().as_bytes();
        let cert = one.cert_pem.as_bytes();
        assert_eq!(
            Identity::from_pem(other.cert_pem.as_bytes(), key).unwrap_err(),
            PemProblem::KeyMismatch
        );
        assert_eq!(
            Identity::from_pem(b"", key).unwrap_err(),
            PemProblem::NoCertificate
        );
        assert_eq!(
            Identity::from_pem(cert, cert).unwrap_err(),
            PemProblem::NoKey
        );
        let half = &key[..key.len() / 2];
        assert_eq!(
            Identity::from_pem(cert, half).unwrap_err(),
            PemProblem::KeyNotPem
        );
        assert_eq!(
            Identity::from_pem(&cert[..cert.len() / 2], key).unwrap_err(),
            PemProblem::CertificateNotPem
        );
    }
}
