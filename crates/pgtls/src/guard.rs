//! A stream that watches the server's side of the start-up exchange and refuses to go on when an
//! unverified server asks for the password in clear text. The request is cut off before the
//! driver sees it, so the password is never written.
//!
//! It follows the protocol's framing (one type byte, a four-byte length counting itself) from the
//! start of the connection, or from the start of TLS, until authentication succeeds; after that
//! it only passes bytes through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsStream};

/// `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// First byte of a TLS record carrying a handshake (direct TLS negotiation).
const TLS_HANDSHAKE: u8 = 0x16;
const AUTHENTICATION: u8 = b'R';
const AUTH_OK: u32 = 0;
const AUTH_CLEARTEXT_PASSWORD: u32 = 3;

/// Where the watcher is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the client's first bytes: they say whether TLS is requested.
    Opening { seen: usize },
    /// The client asked for TLS; the server answers with one byte.
    SslAnswer,
    /// Reading a message header.
    Header { have: usize, bytes: [u8; 5] },
    /// Reading the authentication code of an `R` message.
    AuthCode {
        have: usize,
        bytes: [u8; 4],
        rest: usize,
    },
    /// Skipping a message body.
    Body { left: usize },
    /// Authenticated, or TLS took over (and watches inside): nothing more to do.
    Done,
}

pub(crate) struct Guard<S> {
    inner: S,
    state: State,
    allow_cleartext: bool,
}

impl<S> Guard<S> {
    /// A watcher at the very start of a connection (it sees the TLS request, if any).
    pub(crate) fn at_start(inner: S, allow_cleartext: bool) -> Guard<S> {
        Guard {
            inner,
            state: State::Opening { seen: 0 },
            allow_cleartext,
        }
    }

    /// A watcher inside a TLS session, where the start-up message comes first.
    pub(crate) fn inside_tls(inner: S, allow_cleartext: bool) -> Guard<S> {
        Guard {
            inner,
            state: State::Header {
                have: 0,
                bytes: [0; 5],
            },
            allow_cleartext,
        }
    }

    /// Follows what the client writes, until it is clear whether TLS was requested.
    fn watch_written(&mut self, written: &[u8]) {
        let State::Opening { seen } = self.state else {
            return;
        };
        let Some(&first) = written.first() else {
            return;
        };
        if seen == 0 && first == TLS_HANDSHAKE {
            // Direct TLS: the watcher inside the session takes over.
            self.state = State::Done;
            return;
        }
        let upto = (SSL_REQUEST.len() - seen).min(written.len());
        if written[..upto] != SSL_REQUEST[seen..seen + upto] {
            // A start-up message: the server's first bytes are messages.
            self.state = State::Header {
                have: 0,
                bytes: [0; 5],
            };
        } else if seen + upto == SSL_REQUEST.len() {
            self.state = State::SslAnswer;
        } else {
            self.state = State::Opening { seen: seen + upto };
        }
    }

    /// Follows what the server sent; an error when it asks for a cleartext password that is not
    /// to be given.
    fn watch_read(&mut self, mut read: &[u8]) -> io::Result<()> {
        while !read.is_empty() {
            match &mut self.state {
                State::Opening { .. } | State::Done => return Ok(()),
                State::SslAnswer => {
                    self.state = match read[0] {
                        // TLS follows: the watcher inside the session takes over.
                        b'S' => State::Done,
                        _ => State::Header {
                            have: 0,
                            bytes: [0; 5],
                        },
                    };
                    read = &read[1..];
                }
                State::Header { have, bytes } => {
                    let take = (5 - *have).min(read.len());
                    bytes[*have..*have + take].copy_from_slice(&read[..take]);
                    *have += take;
                    read = &read[take..];
                    if *have == 5 {
                        let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                        let body = (length as usize).saturating_sub(4);
                        self.state = if bytes[0] == AUTHENTICATION && body >= 4 {
                            State::AuthCode {
                                have: 0,
                                bytes: [0; 4],
                                rest: body - 4,
                            }
                        } else {
                            State::Body { left: body }
                        };
                    }
                }
                State::AuthCode { have, bytes, rest } => {
                    let take = (4 - *have).min(read.len());
                    bytes[*have..*have + take].copy_from_slice(&read[..take]);
                    *have += take;
                    read = &read[take..];
                    if *have == 4 {
                        let code = u32::from_be_bytes(*bytes);
                        let rest = *rest;
                        if code == AUTH_CLEARTEXT_PASSWORD && !self.allow_cleartext {
                            return Err(io::Error::new(
                                io::ErrorKind::PermissionDenied,
                                "the server asked for the password in clear text, which is refused \
                                 from a server whose certificate is not verified (a man in the \
                                 middle asks for exactly that); use sslmode verify-full, or allow \
                                 cleartext passwords explicitly",
                            ));
                        }
                        self.state = if code == AUTH_OK {
                            State::Done
                        } else {
                            State::Body { left: rest }
                        };
                    }
                }
                State::Body { left } => {
                    let take = (*left).min(read.len());
                    *left -= take;
                    read = &read[take..];
                    if *left == 0 {
                        self.state = State::Header {
                            have: 0,
                            bytes: [0; 5],
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.state != State::Done {
                    let fresh = buf.filled()[before..].to_vec();
                    if let Err(error) = this.watch_read(&fresh) {
                        // Hand nothing of it on: the driver must never answer the request.
                        buf.set_filled(before);
                        return Poll::Ready(Err(error));
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &result {
            this.watch_written(&buf[..*written]);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for Guard<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        message(b'R', &body)
    }

    /// Feeds `server` one byte at a time, the worst split a socket can produce.
    fn feed(guard: &mut Guard<()>, server: &[u8]) -> io::Result<()> {
        for byte in server {
            guard.watch_read(std::slice::from_ref(byte))?;
        }
        Ok(())
    }

    #[test]
    fn a_cleartext_request_is_refused_wherever_the_bytes_split() {
        let mut guard = Guard::at_start((), false);
        guard.watch_written(&SSL_REQUEST[..3]);
        guard.watch_written(&SSL_REQUEST[3..]);
        let mut server = vec![b'N'];
        server.extend(message(b'N', b"SNOTICE\0\0"));
        server.extend(auth(AUTH_CLEARTEXT_PASSWORD, &[]));
        let error = feed(&mut guard, &server).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn scram_and_allowed_cleartext_pass_and_the_watch_ends_at_authentication() {
        let mut scram = Guard::at_start((), false);
        scram.watch_written(b"\0\0\0\x29\0\x03\0\0user\0u\0");
        let mut server = auth(10, b"SCRAM-SHA-256\0\0");
        server.extend(auth(11, b"r=abc,s=xyz,i=4096"));
        server.extend(auth(12, b"v=proof"));
        server.extend(auth(AUTH_OK, &[]));
        feed(&mut scram, &server).expect("SCRAM passes");
        assert_eq!(scram.state, State::Done);
        // After authentication the bytes are the application's, whatever they look like.
        feed(&mut scram, &auth(AUTH_CLEARTEXT_PASSWORD, &[])).expect("not watched any more");

        let mut allowed = Guard::inside_tls((), true);
        feed(&mut allowed, &auth(AUTH_CLEARTEXT_PASSWORD, &[])).expect("allowed");
    }

    #[test]
    fn tls_hands_the_watch_to_the_session_inside() {
        let mut outer = Guard::at_start((), false);
        outer.watch_written(&SSL_REQUEST);
        feed(&mut outer, b"S\x16\x03\x03").expect("TLS bytes are not watched");
        assert_eq!(outer.state, State::Done);

        let mut direct = Guard::at_start((), false);
        direct.watch_written(&[TLS_HANDSHAKE, 3, 1]);
        assert_eq!(direct.state, State::Done);

        let mut inner = Guard::inside_tls((), false);
        assert!(feed(&mut inner, &auth(AUTH_CLEARTEXT_PASSWORD, &[])).is_err());
    }
}
