//! `smartlic bench --signatures N`: the two signature operations of an authorization alone,
//! N times — the Ed25519 verification of a device's request and the ECDSA P-256 signature of
//! the manager's answer — through the same functions the manager calls
//! ([`PublicKey::verify_b64`], [`SigningKey::sign_b64`]) over inputs of an authorization's
//! size. Run under `valgrind --tool=callgrind` with N and 2N: the difference divided by N is
//! the instructions of one pair, the floor the server's cost per authorization is compared
//! with (BENCHMARKS.md).

use anyhow::Context;
use smartlic_proto::wire::{request_signing_input, response_signing_input, PATH_AUTHORIZE};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::hint::black_box;
use std::time::Instant;

/// About the size of an authorization request's and answer's bodies (one usage entry).
const REQUEST_BYTES: usize = 420;
const ANSWER_BYTES: usize = 640;

pub fn run(n: u32) -> anyhow::Result<()> {
    let device = SigningKey::generate(KeyAlgorithm::Ed25519).context("cannot make a device key")?;
    let ca = SigningKey::generate(KeyAlgorithm::EcdsaP256).context("cannot make a CA key")?;
    let request = request_signing_input(PATH_AUTHORIZE, &[b'r'; REQUEST_BYTES]);
    let answer = response_signing_input(PATH_AUTHORIZE, &[b'a'; ANSWER_BYTES]);
    let signature = device.sign_b64(&request)?;
    let public = device.public_key();
    let began = Instant::now();
    for _ in 0..n {
        anyhow::ensure!(black_box(&public).verify_b64(black_box(&request), black_box(&signature)), "bad signature");
        black_box(ca.sign_b64(black_box(&answer))?);
    }
    let each = began.elapsed().as_secs_f64() * 1e6 / f64::from(n.max(1));
    println!("{n} request verifications (Ed25519) and answer signatures (ECDSA P-256): {each:.1} µs a pair");
    Ok(())
}
