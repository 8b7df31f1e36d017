//! Everything go-plugin needs from a plugin process: the handshake, mutual TLS and the gRPC server.

pub mod handshake;
pub mod server;
pub mod tls;
