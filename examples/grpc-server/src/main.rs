//! `cargo run -p grpc-server`: the voice service on `127.0.0.1:50051`
//! (or the address in `GRPC_ADDR`), 16 calls at once, 64 waiting.

use grpc_server::{Settings, serve};
use tower_pressure::PriorityLimiter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("GRPC_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let limiter = PriorityLimiter::builder().limit(16).max_queue(64).build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("voice service on {}", listener.local_addr()?);
    serve(listener, Settings::new(limiter)).await?;
    Ok(())
}
