//! The socket under a TLS client connection, which can leave one worker's event loop and be
//! registered with another's while the TLS session stays where it is.
//!
//! A plain connection moves between workers as its bare socket (`balance.rs`). A TLS
//! connection also has rustls's state: keys, sequence numbers, records read but not yet
//! decrypted or handed out. tokio-rustls keeps that in its stream and can give it up
//! (`into_inner`) but has no way to build a stream again around it, so the stream itself
//! travels, and only the socket inside it is swapped: the stream is generic over its
//! socket, and this one can be emptied on one worker and filled on another.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP socket that is absent while its connection is between two workers.
pub struct RelocatableSocket(Option<TcpStream>);

impl RelocatableSocket {
    pub fn new(socket: TcpStream) -> Self {
        RelocatableSocket(Some(socket))
    }

    /// Takes the socket out of this worker's event loop, leaving this empty.
    pub fn take(&mut self) -> io::Result<std::net::TcpStream> {
        self.0.take().ok_or_else(absent)?.into_std()
    }

    /// Registers `socket` with the current worker's event loop.
    pub fn put(&mut self, socket: std::net::TcpStream) -> io::Result<()> {
        self.0 = Some(TcpStream::from_std(socket)?);
        Ok(())
    }

    fn socket(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.0.as_mut().map(Pin::new).ok_or_else(absent)
    }
}

fn absent() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket is on its way to another worker",
    )
}

impl AsyncRead for RelocatableSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().socket() {
            Ok(socket) => socket.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for RelocatableSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().socket() {
            Ok(socket) => socket.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().socket() {
            Ok(socket) => socket.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // tokio-rustls writes its records with one writev when the socket can take one.
        self.0.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().socket() {
            Ok(socket) => socket.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().socket() {
            Ok(socket) => socket.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
