//! Generated gRPC bindings for the protocols the plugin speaks; the sources
//! live in `proto/` at the workspace root and `build.rs` compiles them.

/// Terraform plugin protocol 6 (the subset for managed resources).
pub mod tfplugin6 {
    // Upstream groups each RPC's Request/Response inside an otherwise empty
    // message (e.g. `GetProviderSchema`); prost emits that wrapper as a struct
    // nobody constructs, which a binary crate reports as dead code.
    #![allow(dead_code)]
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller, stdio and broker services.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// gRPC health checking (`grpc.health.v1`), polled by go-plugin's host.
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}
