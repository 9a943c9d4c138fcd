//! Token verification, signing and cache benchmarks.
//!
//! For each of EdDSA, ES256, ES384, RS256 and PS256, one key and one real
//! Warden access token are made, then measured back to back so that the
//! report shows them side by side:
//!
//! - `raw/<alg>`: the bare aws-lc-rs signature check of that token's signing
//!   input and signature (a `ParsedPublicKey` built once, outside the loop);
//! - `verify/<alg>`: `TokenVerifier::verify` on the whole token (parse,
//!   header, strict JSON, key selection, signature, claims);
//! - `sign/<alg>`: `issue::encode` of the same claims.
//!
//! `verify/<alg>` divided by `raw/<alg>` is the cost of everything Warden
//! does around the signature. Then `cached_verify` (a warm
//! `VerifiedTokenCache::verify`, goal < 1 µs) and `cache_get`.
//!
//! Run: `cargo bench -p warden-jose --bench verify`
//! (filter with e.g. `-- EdDSA` or `-- raw/`).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use criterion::Criterion;
use serde_json::Value;
use warden_jose::issue::{self, AccessTokenClaims};
use warden_jose::{
    Algorithm, AlgorithmSet, Jwk, KeySet, SigningKey, TokenVerifier, TrustedIssuer, Validation, VerifiedTokenCache,
    base64url,
};

const ISSUER: &str = "https://warden.example";
const AUDIENCE: &str = "inference";
/// Issue time of every benchmark token.
const IAT: u64 = 1_800_000_000;
/// The fixed "now" used for verification: inside [iat, exp).
const NOW: u64 = IAT + 60;

type BenchResult<T> = Result<T, String>;

/// Everything measured for one algorithm, built once.
struct Fixture {
    alg: Algorithm,
    key: SigningKey,
    claims: AccessTokenClaims,
    token: String,
    verifier: TokenVerifier,
    raw_key: ParsedPublicKey,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn claims() -> BenchResult<AccessTokenClaims> {
    Ok(AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "user:alice".into(),
        aud: vec![AUDIENCE.into()],
        exp: IAT + 3600,
        iat: IAT,
        nbf: IAT,
        jti: issue::new_jti().map_err(|e| format!("jti: {e}"))?,
        client_id: "cli-web".into(),
        scope: "inference.invoke models.read usage.read".into(),
        roles: vec!["analyst".into(), "developer".into()],
        tenant: None,
        act: None,
        cnf: None,
        authorization_details: None,
    })
}

/// A base64url member of the published JWK, decoded.
fn jwk_member(jwk: &Value, name: &str) -> BenchResult<Vec<u8>> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("JWK has no `{name}`"))?;
    base64url::decode(text).ok_or_else(|| format!("JWK `{name}` is not base64url"))
}

/// The public key as aws-lc-rs parses it, from the key's published JWK.
fn raw_public_key(key: &SigningKey) -> BenchResult<ParsedPublicKey> {
    let jwk = Jwk::from_verifying_key(key.verifying_key())
        .map_err(|e| format!("jwk: {e}"))?
        .to_json();
    let rejected = |e: aws_lc_rs::error::KeyRejected| format!("aws-lc-rs rejected key: {e}");
    match key.alg() {
        Algorithm::EdDSA => ParsedPublicKey::new(&signature::ED25519, jwk_member(&jwk, "x")?).map_err(rejected),
        alg @ (Algorithm::ES256 | Algorithm::ES384) => {
            let mut point = vec![0x04];
            point.extend(jwk_member(&jwk, "x")?);
            point.extend(jwk_member(&jwk, "y")?);
            let verify_alg = if alg == Algorithm::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            ParsedPublicKey::new(verify_alg, point).map_err(rejected)
        }
        alg @ (Algorithm::RS256 | Algorithm::PS256) => {
            let n = jwk_member(&jwk, "n")?;
            let e = jwk_member(&jwk, "e")?;
            let params = if alg == Algorithm::RS256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .to_parsed_public_key(params)
            .map_err(rejected)
        }
        other => Err(format!("{other} is not benchmarked")),
    }
}

fn fixture(alg: Algorithm) -> BenchResult<Fixture> {
    let (key, _pkcs8) = SigningKey::generate(alg).map_err(|e| format!("{alg} keygen: {e}"))?;
    let claims = claims()?;
    let token = issue::encode(&key, "at+jwt", &claims).map_err(|e| format!("{alg} sign: {e}"))?;
    let keys = KeySet::new([key.verifying_key().clone()]).map_err(|e| format!("{alg} key set: {e}"))?;
    let verifier = TokenVerifier::new(
        [TrustedIssuer::new(ISSUER, keys, AlgorithmSet::asymmetric())],
        Validation::access_token(AUDIENCE),
    );
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or_else(|| format!("{alg} token has no signature segment"))?;
    let signature = base64url::decode(sig_b64).ok_or_else(|| format!("{alg} signature is not base64url"))?;
    let raw_key = raw_public_key(&key)?;

    // Both paths must accept the token, or the numbers mean nothing.
    raw_key
        .verify_sig(signing_input.as_bytes(), &signature)
        .map_err(|_| format!("{alg}: raw check refused the token"))?;
    let verified = verifier
        .verify(&token, NOW)
        .map_err(|e| format!("{alg}: verifier refused the token: {e}"))?;
    if verified.claims().scopes().count() != 3 || verified.claims().roles().len() != 2 {
        return Err(format!("{alg}: claims did not round-trip"));
    }

    Ok(Fixture {
        alg,
        signing_input: signing_input.as_bytes().to_vec(),
        signature,
        key,
        claims,
        token,
        verifier,
        raw_key,
    })
}

fn bench_alg(c: &mut Criterion, f: &Fixture) {
    let alg = f.alg;
    c.bench_function(&format!("raw/{alg}"), |b| {
        b.iter(|| {
            f.raw_key
                .verify_sig(black_box(&f.signing_input), black_box(&f.signature))
                .is_ok()
        })
    });
    c.bench_function(&format!("verify/{alg}"), |b| {
        b.iter(|| f.verifier.verify(black_box(&f.token), black_box(NOW)).is_ok())
    });
    // The two largest pieces of Warden's own work, for attributing the
    // verify/raw difference: decoding and strictly parsing each segment.
    let mut segments = f.token.split('.');
    let (header, payload) = (segments.next().unwrap_or_default(), segments.next().unwrap_or_default());
    c.bench_function(&format!("parse_header/{alg}"), |b| {
        b.iter(|| base64url::decode(black_box(header)).map(|h| warden_jose::strict_json::parse_object(&h).is_ok()))
    });
    c.bench_function(&format!("parse_payload/{alg}"), |b| {
        b.iter(|| base64url::decode(black_box(payload)).map(|p| warden_jose::strict_json::parse_object(&p).is_ok()))
    });
    c.bench_function(&format!("sign/{alg}"), |b| {
        b.iter(|| issue::encode(&f.key, "at+jwt", black_box(&f.claims)).map(|t| t.len()))
    });
}

/// A DPoP proof (RFC 9449) of `f`'s key for a gateway request carrying
/// `f`'s token, and the rules it is checked under.
fn dpop_fixture(f: &Fixture) -> BenchResult<String> {
    let proof = warden_jose::dpop::sign_proof(
        &f.key,
        "POST",
        "https://warden.example/v1/chat/completions",
        NOW,
        "bench-proof-1",
        Some(&f.token),
        None,
    )
    .map_err(|e| format!("signing a proof: {e}"))?;
    check_dpop(&proof, &f.token)
        .then_some(proof)
        .ok_or_else(|| "the proof does not check".to_owned())
}

fn check_dpop(proof: &str, token: &str) -> bool {
    let target = warden_jose::dpop::ProofTarget {
        method: "POST",
        url: "https://warden.example/v1/chat/completions",
        access_token: Some(token),
    };
    warden_jose::dpop::check_proof(proof, &target, &warden_jose::dpop::ProofRules::default(), NOW).is_ok()
}

/// Checking a DPoP proof: what a bound token adds to each request (the
/// replay cache aside), against the raw signature check of the same key.
fn bench_dpop(c: &mut Criterion, f: &Fixture) -> BenchResult<()> {
    let proof = dpop_fixture(f)?;
    c.bench_function(&format!("dpop_check/{}", f.alg), |b| {
        b.iter(|| check_dpop(black_box(&proof), black_box(&f.token)))
    });
    Ok(())
}

fn bench_cache(c: &mut Criterion, f: &Fixture) -> BenchResult<()> {
    let cache = VerifiedTokenCache::new(f.verifier.clone(), 1024);
    cache.verify(&f.token, NOW).map_err(|e| format!("cache warm-up: {e}"))?;
    if cache.get(&f.token, NOW).is_none() {
        return Err("cache did not keep the token".into());
    }
    c.bench_function("cached_verify", |b| {
        b.iter(|| cache.verify(black_box(&f.token), black_box(NOW)).is_ok())
    });
    c.bench_function("cache_get", |b| {
        b.iter(|| cache.get(black_box(&f.token), black_box(NOW)).is_some())
    });
    Ok(())
}

fn run() -> BenchResult<()> {
    let fixtures = Algorithm::ASYMMETRIC
        .into_iter()
        .map(fixture)
        .collect::<BenchResult<Vec<_>>>()?;
    let mut c = Criterion::default().configure_from_args();
    for f in &fixtures {
        bench_alg(&mut c, f);
    }
    let eddsa = fixtures
        .iter()
        .find(|f| f.alg == Algorithm::EdDSA)
        .ok_or("no EdDSA fixture")?;
    bench_cache(&mut c, eddsa)?;
    for f in fixtures
        .iter()
        .filter(|f| matches!(f.alg, Algorithm::ES256 | Algorithm::EdDSA))
    {
        bench_dpop(&mut c, f)?;
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--bench") {
        interleaved_ratios(&fixtures);
    }
    Ok(())
}

/// Runs of a few milliseconds of each routine, alternated, so that both see
/// the same machine state; returns nanoseconds per call of each run.
fn alternate(rounds: usize, mut a: impl FnMut() -> bool, mut b: impl FnMut() -> bool) -> (Vec<f64>, Vec<f64>) {
    let batch = |f: &mut dyn FnMut() -> bool| {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < Duration::from_millis(20) {
            black_box(f());
            calls += 1;
        }
        start.elapsed().as_nanos() as f64 / f64::from(calls)
    };
    let (mut xs, mut ys) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        xs.push(batch(&mut a));
        ys.push(batch(&mut b));
    }
    (xs, ys)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The verify/raw ratio per algorithm, measured with raw and full
/// verification interleaved (this machine's speed drifts by ±20% between
/// criterion's separate runs, which swamps a few microseconds).
fn interleaved_ratios(fixtures: &[Fixture]) {
    println!("\ninterleaved verify vs raw signature check (median of 40 alternating 20 ms runs):");
    println!(
        "{:<6} {:>10} {:>10} {:>8} {:>12}",
        "alg", "raw µs", "verify µs", "ratio", "overhead µs"
    );
    for f in fixtures {
        let (raw, full) = alternate(
            40,
            || {
                f.raw_key
                    .verify_sig(black_box(&f.signing_input), black_box(&f.signature))
                    .is_ok()
            },
            || f.verifier.verify(black_box(&f.token), black_box(NOW)).is_ok(),
        );
        let ratios: Vec<f64> = full.iter().zip(&raw).map(|(v, r)| v / r).collect();
        let (raw, full) = (median(raw) / 1000.0, median(full) / 1000.0);
        println!(
            "{:<6} {:>10.2} {:>10.2} {:>8.3} {:>12.2}",
            f.alg.as_str(),
            raw,
            full,
            median(ratios),
            full - raw
        );
    }
    println!("\ninterleaved DPoP proof check vs raw signature check (same key; median of 40 alternating 20 ms runs):");
    println!(
        "{:<6} {:>10} {:>10} {:>8} {:>12}",
        "alg", "raw µs", "dpop µs", "ratio", "overhead µs"
    );
    for f in fixtures
        .iter()
        .filter(|f| matches!(f.alg, Algorithm::ES256 | Algorithm::EdDSA))
    {
        let Ok(proof) = dpop_fixture(f) else {
            println!("{:<6} (no proof could be made)", f.alg.as_str());
            continue;
        };
        let (raw, dpop) = alternate(
            40,
            || {
                f.raw_key
                    .verify_sig(black_box(&f.signing_input), black_box(&f.signature))
                    .is_ok()
            },
            || check_dpop(black_box(&proof), black_box(&f.token)),
        );
        let ratios: Vec<f64> = dpop.iter().zip(&raw).map(|(v, r)| v / r).collect();
        let (raw, dpop) = (median(raw) / 1000.0, median(dpop) / 1000.0);
        println!(
            "{:<6} {:>10.2} {:>10.2} {:>8.3} {:>12.2}",
            f.alg.as_str(),
            raw,
            dpop,
            median(ratios),
            dpop - raw
        );
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verify bench: {e}");
            ExitCode::FAILURE
        }
    }
}
