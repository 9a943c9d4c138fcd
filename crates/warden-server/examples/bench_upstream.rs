//! A minimal upstream for `scripts/bench-gateway`: answers every request,
//! any method and path, with the same small JSON body, as fast as axum can.
//! It reads the request body (so that POSTs are consumed like a real API
//! would) and ignores it.
//!
//! Run: `cargo run --release -p warden-server --example bench_upstream -- [ADDR]`
//! (default `127.0.0.1:0`); it prints `listening on http://ADDR` on stdout
//! once bound, and serves until killed. `BENCH_UPSTREAM_THREADS` sets the
//! number of worker threads (default: one per core).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;

/// The fixed answer: a small OpenAI-style chat completion.
const BODY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

async fn answer(_body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = std::env::var("BENCH_UPSTREAM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        runtime.worker_threads(n);
    }
    runtime.build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new().fallback(answer);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
