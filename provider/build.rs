//! Generates the gRPC bindings from `../proto` with protox, a pure-Rust
//! protobuf compiler, so building needs no system `protoc`.

use std::error::Error;
use std::path::PathBuf;

/// Proto files relative to the proto directory, which is also the sole
/// include root (protox supplies `google/protobuf/*.proto` itself).
const PROTO_FILES: [&str; 3] = ["tfplugin6.proto", "plugin.proto", "health.proto"];

// Returning the error from main prints its Debug form, which for protox is
// the offending file, line and message.
fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("..").join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    // Imports stay in the set so prost-build can resolve google.protobuf.Empty,
    // which it maps to `()`; source info turns proto comments into rustdoc.
    let descriptors = protox::Compiler::new([&proto_dir])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTO_FILES)?
        .file_descriptor_set();

    // Clients too: tests drive the server through them.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
