//! The transport gateway (G-3): relays device messages to a manager (the cloud, or a
//! satellite) and its answers back, byte for byte with their signature headers. Requests are
//! signed by the device and answers by the manager over the protocol path, so the gateway can
//! neither alter nor forge either; it holds no licensing state. When the manager cannot be
//! reached it answers 502 or 504 with no signature, which a device treats as a communication
//! failure and retries, as it would without the gateway.

use crate::error::ApiError;
use crate::{connection_cap, device, listen, tls, Mode, ServerConfig};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use smartlic_agent::client::with_causes as causes;
use smartlic_core::{Clock, SystemClock};
use smartlic_proto::wire;
use std::net::SocketAddr;
use std::time::Duration;

/// A device message is a few kilobytes (a usage list of 1000 tags stays well under this).
const MAX_MESSAGE: usize = 1 << 20;
/// The manager's answer must arrive within this, shorter than a device's own timeout (60 s),
/// so the device learns it from the gateway's 504 rather than by giving up on the gateway.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The headers a device message and its answer carry (a satellite's answer, its certificate
/// too, S-6); nothing else is relayed.
const RELAYED: [&str; 3] = [wire::SIGNATURE_HEADER, wire::SATELLITE_CERTIFICATE_HEADER, "content-type"];

pub struct Gateway {
    pub local_addr: SocketAddr,
    /// The CA of the data directory that issued the listener's certificate, which devices
    /// trust for TLS; None with `--tls-cert`.
    pub ca_pem: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Where device messages go: the upstream manager's base URL and a client trusting its CA only.
#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// Starts a gateway for `config.mode` = [`Mode::Gateway`]. Its data directory holds only the
/// CA that issues its TLS certificate (none is created with `--tls-cert`).
pub async fn start(config: ServerConfig) -> anyhow::Result<Gateway> {
    let Mode::Gateway { upstream, upstream_ca } = &config.mode else {
        anyhow::bail!("gateway::start needs the gateway mode");
    };
    let base = upstream_base(upstream)?;
    let ca_text =
        std::fs::read_to_string(upstream_ca).with_context(|| format!("cannot read {}", upstream_ca.display()))?;
    let http = smartlic_agent::tls::https_client(&ca_text).with_context(|| format!("in {}", upstream_ca.display()))?;
    let (listener, tls_names, operator_tls) = listen(&config).await?;
    let local_addr = listener.local_addr()?;
    let limits = connection_cap(config.limits.clone());
    let ((cert_pem, key_pem), ca_pem) = match operator_tls {
        Some(pair) => (pair, None),
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
            let now_secs = SystemClock.now().0 / 1000;
            let (ca, _) = tls::load_or_create_ca(&config.data_dir, now_secs)?;
            (ca.issue_tls_certificate(&tls_names, now_secs)?, Some(ca.cert_pem().to_string()))
        }
    };
    let tls_config = tls::server_config(&cert_pem, &key_pem)?;
    tracing::info!(upstream = %base, "transport gateway relaying device messages");
    let task = tokio::spawn(tls::serve(listener, tls_config, router(Upstream { base, http }), limits));
    Ok(Gateway { local_addr, ca_pem, task })
}

/// The upstream manager's URL as the base the protocol paths are appended to (as a device
/// does with its configured URL): https, no query or fragment, no trailing slash.
fn upstream_base(text: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(text).with_context(|| format!("--upstream {text:?} is not a URL"))?;
    if url.scheme() != "https" {
        anyhow::bail!("--upstream {text:?} must be an https:// URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("--upstream {text:?} must have no query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The device paths (bare and under each prefix of [`device::PATH_PREFIXES`]) and `/health`;
/// anything else, the REST and admin APIs included, is no business of a gateway.
fn router(upstream: Upstream) -> Router {
    let relayed = Router::new().route("/device/{*rest}", any(relay)).with_state(upstream);
    let relayed = device::PATH_PREFIXES.iter().fold(relayed.clone(), |r, prefix| r.nest(prefix, relayed.clone()));
    relayed.layer(DefaultBodyLimit::max(MAX_MESSAGE)).route("/health", get(|| async { "ok" })).fallback(
        |uri: Uri| async move {
            let why =
                format!("{} is not a device path: this is a transport gateway (see docs/PROTOCOL.md)", uri.path());
            ApiError::not_found(why)
        },
    )
}

/// Sends the message to the upstream at the same protocol path (a nested route sees the path
/// without its prefix) and answers with what it answered.
async fn relay(
    State(upstream): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(r) => return ApiError::new(r.status(), "PAYLOAD_TOO_LARGE", r.body_text()).into_response(),
    };
    let mut request = upstream.http.request(method, format!("{}{}", upstream.base, uri.path())).body(body);
    for name in RELAYED {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, answer_of(request)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(why)) => {
            tracing::warn!(upstream = %upstream.base, "cannot relay a device message: {why}");
            let message = format!("the gateway cannot reach the manager at {}: {why}", upstream.base);
            ApiError::new(StatusCode::BAD_GATEWAY, "UPSTREAM_UNREACHABLE", message).into_response()
        }
        Err(_) => {
            tracing::warn!(upstream = %upstream.base, "the manager did not answer in {ANSWER_TIMEOUT:?}");
            let message =
                format!("the manager at {} did not answer within {} s", upstream.base, ANSWER_TIMEOUT.as_secs());
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT", message).into_response()
        }
    }
}

/// The upstream's answer as it came: status, relayed headers and body, bounded in size.
async fn answer_of(request: reqwest::RequestBuilder) -> Result<Response, String> {
    let mut answer = request.send().await.map_err(|e| causes(&e))?;
    let mut relayed = Response::builder().status(answer.status());
    for name in RELAYED {
        if let Some(value) = answer.headers().get(name) {
            relayed = relayed.header(name, value);
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| causes(&e))? {
        if body.len() + chunk.len() > MAX_MESSAGE {
            return Err(format!("its answer is larger than {MAX_MESSAGE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    relayed.body(body.into()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_bases_for_the_protocol_paths() {
        assert_eq!(upstream_base("https://cloud:8443").unwrap(), "https://cloud:8443");
        assert_eq!(upstream_base("https://cloud:8443/").unwrap(), "https://cloud:8443");
        assert_eq!(upstream_base("https://sat/SmartTransport/").unwrap(), "https://sat/SmartTransport");
        for (bad, why) in [
            ("http://cloud:8443", "must be an https:// URL"),
            ("cloud:8443", "must be an https:// URL"),
            ("https://cloud/?a=b", "no query or fragment"),
            ("not a url", "is not a URL"),
        ] {
            let error = format!("{:#}", upstream_base(bad).unwrap_err());
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
