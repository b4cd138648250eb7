//! The voice gateway behind tower-pressure, on 127.0.0.1:3000.
//!
//! Run with `cargo run -p voice-gateway`, then for example
//! `curl -i localhost:3000/voice/transcribe`. `cargo xtask demo` drives it
//! past its capacity and compares it with tower's own layers.

use std::time::Duration;

use voice_gateway::{Capacity, app};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let capacity = Capacity {
        slots: 4,
        work: Duration::from_millis(25),
    };
    let (app, _limiter) = app(capacity);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "voice gateway on http://{} ({:.0} requests/s capacity)",
        listener.local_addr()?,
        capacity.per_second()
    );
    axum::serve(listener, app).await
}
