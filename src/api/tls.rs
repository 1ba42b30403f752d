//! The gRPC port over TLS: connections are accepted here and reach tonic only once their
//! handshake succeeded, so a plaintext or stalled caller never gets a gRPC answer.

use crate::tls::Handshakes;
use futures_core::Stream;
use rustls::ServerConfig;
use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The stream of handshaken connections tonic serves. Dropping it (tonic does when it stops
/// accepting) closes the port and abandons the handshakes under way.
pub(super) struct TlsIncoming {
    listener: TcpListener,
    handshakes: Handshakes<TcpStream>,
}

impl TlsIncoming {
    pub(super) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            listener,
            handshakes: Handshakes::new(config),
        }
    }
}

impl Stream for TlsIncoming {
    type Item = io::Result<TlsConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Waiting on the listener whenever there is room keeps a wake-up registered while no
        // handshake runs (see `Handshakes::poll_done`).
        while this.handshakes.has_room() {
            match this.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, peer))) => {
                    // As on the plaintext port: without it, Nagle's algorithm meets the
                    // client's delayed ACK and replies wait ~40 ms.
                    let _ = tcp.set_nodelay(true);
                    this.handshakes.start(tcp, peer);
                }
                // tonic logs it and asks again, as with its own TcpIncoming.
                Poll::Ready(Err(err)) => return Poll::Ready(Some(Err(err))),
                Poll::Pending => break,
            }
        }
        this.handshakes
            .poll_done(cx)
            .map(|(tls, _)| Some(Ok(TlsConnection(tls))))
    }
}

/// A connection after its handshake. Its connect info is the TCP one, so a call's
/// `remote_addr()` reads the same over TLS as over plaintext.
pub(super) struct TlsConnection(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
