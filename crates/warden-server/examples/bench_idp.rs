//! A static external issuer for `scripts/bench-gateway`: makes an ES256
//! key, writes its JWKS and tokens signed with it, and exits. Warden
//! trusts it as a `[[federation]]` issuer (the JWKS served on loopback).
//!
//! Run: `cargo run --release -p warden-server --example bench_idp -- DIR ISSUER AUDIENCE COUNT`.
//! Writes `DIR/jwks.json`, `DIR/repeated.token` (one token) and
//! `DIR/tokens` (COUNT distinct tokens, one a line). Every token is for
//! subject `bench`, group `ml-team`, scope `inference.invoke`, client
//! `bench-idp`, valid for two hours from now, with its own `jti`.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use warden_jose::{Algorithm, Jwk, SigningKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, issuer, audience, count] = args.as_slice() else {
        return Err("usage: bench_idp DIR ISSUER AUDIENCE COUNT".into());
    };
    let dir = std::path::Path::new(dir);
    let count: usize = count.parse()?;
    let (key, _) = SigningKey::generate(Algorithm::ES256)?;
    let jwk = Jwk::from_verifying_key(key.verifying_key())?.to_json();
    std::fs::write(dir.join("jwks.json"), json!({ "keys": [jwk] }).to_string())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = |jti: &str| {
        let claims = json!({
            "iss": issuer, "sub": "bench", "aud": audience, "exp": now + 7200, "iat": now,
            "jti": jti, "azp": "bench-idp", "groups": ["ml-team"], "scope": "inference.invoke",
        });
        warden_jose::issue::encode(&key, "JWT", &claims)
    };
    std::fs::write(dir.join("repeated.token"), token("repeated")?)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("tokens"))?);
    for i in 0..count {
        writeln!(out, "{}", token(&format!("t{i:09}"))?)?;
    }
    out.flush()?;
    Ok(())
}
