//! The device protocol of smartlic, shared by the manager and the agent: wire messages,
//! request and response signing, and the certificates behind them. No I/O happens here.
//! `docs/PROTOCOL.md` describes the exchanges in prose.

pub mod cert;
pub mod keys;
pub mod reservation;
pub mod satellite;
pub mod sync;
pub mod wire;

pub use cert::{CertError, CertificateAuthority, CertificateRequest, IssuedCertificate};
pub use keys::{KeyAlgorithm, KeyError, PublicKey, SigningKey};
