//! The in-process cost of issuing a token, against the raw signature it
//! contains: `mint` (claims + header + base64 + signature) vs `sign` (the
//! signature over a token-sized message). `scripts/bench-token` runs this
//! beside the HTTP load test so both figures come from the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_jose::issue::{AccessTokenClaims, encode, new_jti};
use warden_jose::{Algorithm, SigningKey};

fn claims() -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "svc:trainer".into(),
        aud: vec!["inference".into()],
        exp: 1_800_000_300,
        iat: 1_800_000_000,
        nbf: 1_800_000_000,
        jti: new_jti().unwrap(),
        client_id: "trainer".into(),
        scope: "inference.invoke training.run".into(),
        roles: vec!["ml-engineer".into()],
        tenant: None,
        act: None,
        cnf: None,
        authorization_details: None,
    }
}

fn bench(c: &mut Criterion) {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let message = encode(&key, "at+jwt", &claims()).unwrap();
        let signing_input = message.rsplit_once('.').unwrap().0.to_owned();
        c.bench_function(&format!("sign/{alg}"), |b| {
            b.iter(|| key.sign(black_box(signing_input.as_bytes())).unwrap())
        });
        c.bench_function(&format!("mint/{alg}"), |b| {
            b.iter(|| {
                let mut cl = claims();
                cl.jti = new_jti().unwrap();
                encode(&key, "at+jwt", black_box(&cl)).unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
