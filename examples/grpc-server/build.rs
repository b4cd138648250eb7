//! Generates the `voice` service with protox (a pure-Rust protobuf compiler),
//! so a build needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/voice.proto");
    let fds = protox::compile(["proto/voice.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
