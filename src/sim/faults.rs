//! Injected failures: what a sick or unreachable BBB looks like to a client.
//!
//! Most faults are answered by the request handlers. `Refuse` lives here, below HTTP: the port
//! is closed (so connecting is refused) and every open connection is cut, since a client holding
//! a pooled keep-alive connection would otherwise never notice the outage.

use crate::tls::Handshakes;
use axum::serve::Listener;
use std::{
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpSocket, TcpStream},
    runtime::Handle,
    sync::watch,
};
use tokio_rustls::server::TlsStream;

/// A failure the emulated server shows until another fault (or `Fault::None`) replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fault {
    /// Healthy.
    #[default]
    None,
    /// Every API call answers HTTP 503, like a proxy in front of a stopped bbb-web.
    Unavailable,
    /// Nothing listens: connecting is refused and open connections are closed. Switching back to
    /// `Fault::None` listens on the same port again.
    Refuse,
    /// Connections are accepted and requests read, but not answered (until the fault changes or
    /// the server stops; then the forgotten request gets a 503).
    Hang,
    /// HTTP 200 whose body is not well-formed XML.
    Malformed,
    /// This fraction (0.0 to 1.0) of API calls, picked at random, answers HTTP 500.
    FailFraction(f64),
}

fn refusing(fault: &Fault) -> bool {
    matches!(fault, Fault::Refuse)
}

/// The API port. Opening and closing happen synchronously in `SimServer::set_fault`, so a
/// request sent right after `set_fault` returns already finds the port closed, or listening.
pub(crate) struct Port {
    addr: SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    /// Registering a socket needs the runtime, and `set_fault` may be called from outside it.
    runtime: Handle,
}

impl Port {
    /// Binds `addr`; must be called inside the Tokio runtime that will serve it.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = listen(addr)?;
        Ok(Self {
            addr: listener.local_addr()?,
            listener: Mutex::new(Some(listener)),
            runtime: Handle::current(),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn slot(&self) -> MutexGuard<'_, Option<TcpListener>> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn close(&self) {
        self.slot().take();
    }

    /// Listens again on the same port, if not listening already.
    pub(crate) fn open(&self) -> io::Result<()> {
        let mut slot = self.slot();
        if slot.is_none() {
            let _runtime = self.runtime.enter();
            *slot = Some(listen(self.addr)?);
        }
        Ok(())
    }

    /// `None` while the port is closed.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<(TcpStream, SocketAddr)>>> {
        match &*self.slot() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// The socket is reused on purpose: `Fault::Refuse` closes the port and `Fault::None` must be
/// able to open it again while old connections still linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts on the [`Port`] for axum, waiting while it is closed.
pub(crate) struct RefusableListener {
    port: Arc<Port>,
    faults: watch::Receiver<Fault>,
}

impl RefusableListener {
    pub(crate) fn new(port: Arc<Port>, faults: watch::Receiver<Fault>) -> Self {
        Self { port, faults }
    }
}

impl Listener for RefusableListener {
    type Io = RefusableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // A fault change wakes the loop: a closed listener never will.
            let accepted = tokio::select! {
                accepted = poll_fn(|cx| self.port.poll_accept(cx)) => accepted,
                changed = self.faults.changed() => {
                    if changed.is_err() {
                        // The server is gone; axum's shutdown signal ends the accept loop.
                        std::future::pending::<()>().await;
                    }
                    continue;
                }
            };
            match accepted {
                Some(Ok((stream, peer))) => {
                    // Small XML answers must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    return (RefusableStream::new(stream, self.faults.clone()), peer);
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Some(Err(err)) => {
                    tracing::debug!(%err, "emulated BBB failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                None if refusing(&self.faults.borrow_and_update()) => {
                    if self.faults.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                // Reopening failed in `set_fault` (the port was taken meanwhile): keep trying.
                None => {
                    if let Err(err) = self.port.open() {
                        tracing::warn!(addr = %self.port.addr, %err, "emulated BBB cannot listen again; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.port.addr)
    }
}

/// [`RefusableListener`] behind TLS: handshakes run beside the accept loop, not in it, so a
/// client that stalls its handshake holds up no other.
pub(crate) struct TlsListener {
    inner: RefusableListener,
    handshakes: Handshakes<RefusableStream>,
}

impl TlsListener {
    pub(crate) fn new(inner: RefusableListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            inner,
            handshakes: Handshakes::new(config),
        }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<RefusableStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.has_room();
            let accepted = tokio::select! {
                // Cancel-safe: RefusableListener returns in the same poll that accepted.
                accepted = self.inner.accept(), if room => accepted,
                done = poll_fn(|cx| self.handshakes.poll_done(cx)) => return done,
            };
            self.handshakes.start(accepted.0, accepted.1);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection that breaks as soon as the server starts refusing.
pub(crate) struct RefusableStream {
    tcp: TcpStream,
    refused: Pin<Box<dyn Future<Output = ()> + Send>>,
    cut: bool,
}

impl RefusableStream {
    fn new(tcp: TcpStream, mut faults: watch::Receiver<Fault>) -> Self {
        let refused = Box::pin(async move {
            // A dropped sender means the server stopped: cut the connection too.
            let _ = faults.wait_for(refusing).await;
        });
        Self {
            tcp,
            refused,
            cut: false,
        }
    }

    /// Polled on every read and write, so the connection task wakes up when `Refuse` starts.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.cut && self.refused.as_mut().poll(cx).is_ready() {
            self.cut = true;
        }
        if self.cut {
            Err(io::ErrorKind::ConnectionAborted.into())
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for RefusableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for RefusableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(err) = this.check(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
