//! The manager's certificate authority on disk, its TLS certificate, and an HTTPS-only
//! listener: a plain-HTTP request is answered with the seed's refusal text (C-16).

use crate::state::Limits;
use anyhow::Context;
use smartlic_proto::CertificateAuthority;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::time::Instant;

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Writes a file atomically (temporary file, fsync, rename) with owner-only permissions.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Loads the authority from the data directory, creating it on first start.
pub fn load_or_create_ca(dir: &Path, now_secs: i64) -> anyhow::Result<(CertificateAuthority, bool)> {
    let (cert_path, key_path) = (dir.join(CA_FILE), dir.join(CA_KEY_FILE));
    if cert_path.exists() || key_path.exists() {
        let cert =
            std::fs::read_to_string(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key = std::fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
        let ca = CertificateAuthority::from_pem(&cert, &key).with_context(|| format!("in {}", dir.display()))?;
        return Ok((ca, false));
    }
    let ca = CertificateAuthority::generate("smartlic manager CA", now_secs)?;
    write_private(&key_path, &ca.key_pem())?;
    write_private(&cert_path, ca.cert_pem())?;
    Ok((ca, true))
}

/// Names for the generated TLS certificate: the listen address, with `localhost` for a
/// loopback one; `localhost`, 127.0.0.1 and ::1 when listening on every interface (0.0.0.0 is
/// no address to connect to); then `hostnames` (`--hostname`: the DNS names and addresses
/// devices elsewhere reach the manager by). A name that is neither is refused, naming it.
pub fn names_for(listen: &SocketAddr, hostnames: &[String]) -> anyhow::Result<Vec<String>> {
    let ip = listen.ip();
    let mut names: Vec<String> = if ip.is_unspecified() {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    } else if ip.is_loopback() {
        vec![ip.to_string(), "localhost".into()]
    } else {
        vec![ip.to_string()]
    };
    for name in hostnames {
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            anyhow::bail!("--hostname {name:?} is neither a DNS name nor an IP address");
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

pub fn server_config(cert_pem: &str, key_pem: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("TLS certificate PEM")?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in the TLS certificate file");
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .context("TLS key PEM")?
        .context("no private key in the TLS key file")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Seed 003's words for a device that tries plain HTTP.
pub const HTTP_REFUSED: &str =
    "HTTP is no longer supported to reach backend of smartlic; HTTPS is only supported. Use an https:// URL.";

/// Raises this process's open-file limit to its hard limit (each connection is a file);
/// answers the limit now in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
    Ok(limit.rlim_cur as u64)
}

/// What a connection is doing: its timers and the choice of whom to close at the cap follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted, TLS not yet established.
    Handshake,
    /// Established, nothing received since the last answer (or since the handshake).
    Idle,
    /// Bytes of a request arrived, its headers are not complete.
    Reading,
    /// The headers are complete, the body is still arriving.
    Body,
    /// A request is being handled.
    Busy,
}

/// One open connection, shared by its task and the accept loop.
struct Conn {
    state: std::sync::Mutex<(Phase, Instant)>,
    /// Chosen to make room at the cap: it closes as soon as it is not serving a request.
    evicted: AtomicBool,
    wake: tokio::sync::Notify,
    /// Body bytes of the request in progress received so far (each earns more time).
    body_bytes: AtomicU64,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            state: std::sync::Mutex::new((Phase::Handshake, Instant::now())),
            evicted: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            body_bytes: AtomicU64::new(0),
        }
    }

    fn state(&self) -> (Phase, Instant) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (phase, Instant::now());
        self.wake.notify_one();
    }

    /// Bytes arrived: on an idle connection a request has started and the header timer runs.
    fn received(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == Phase::Idle {
            *state = (Phase::Reading, Instant::now());
            drop(state);
            self.wake.notify_one();
        }
    }

    /// A request's headers are complete: its body, if any, is now timed.
    fn request_started(&self, has_body: bool) {
        self.body_bytes.store(0, Ordering::Relaxed);
        self.set(if has_body { Phase::Body } else { Phase::Busy });
    }

    /// The body has all arrived, or the handler no longer reads it.
    fn body_done(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == Phase::Body {
            *state = (Phase::Busy, Instant::now());
        }
    }

    /// How long `phase` may last; none while a request is handled. A body has `body_timeout`
    /// plus a second per `body_min_rate` bytes received: a large upload at a fair rate goes
    /// through, a trickle that would hold the connection for ever does not.
    fn limit(&self, phase: Phase, limits: &Limits) -> Option<Duration> {
        Some(match phase {
            Phase::Handshake => limits.handshake_timeout,
            Phase::Idle => limits.idle_timeout,
            Phase::Reading => limits.header_timeout,
            Phase::Body => {
                let earned = self.body_bytes.load(Ordering::Relaxed) / limits.body_min_rate.max(1);
                limits.body_timeout + Duration::from_secs(earned)
            }
            Phase::Busy => return None,
        })
    }

    fn may_close(phase: Phase) -> bool {
        matches!(phase, Phase::Handshake | Phase::Idle)
    }

    /// Returns when the connection is to be closed: a timeout of its phase, or an eviction.
    async fn watch(&self, limits: &Limits) {
        loop {
            let (phase, since) = self.state();
            if self.evicted.load(Ordering::Relaxed) && Conn::may_close(phase) {
                return;
            }
            let Some(limit) = self.limit(phase, limits) else {
                self.wake.notified().await;
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(since + limit) => {
                    // A body may have earned more time meanwhile: then look again.
                    let expired = self.limit(phase, limits).is_some_and(|l| Instant::now() >= since + l);
                    if self.state() == (phase, since) && expired {
                        return;
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// A request's body, telling its connection how much arrived and when it ended or was dropped.
struct WatchedBody {
    body: hyper::body::Incoming,
    conn: Arc<Conn>,
}

impl http_body::Body for WatchedBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                self.conn.body_bytes.fetch_add(len, Ordering::Relaxed);
                if self.body.is_end_stream() {
                    self.conn.body_done();
                }
            }
            Poll::Ready(_) => self.conn.body_done(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.conn.body_done();
    }
}

/// The socket of a connection, telling it when bytes arrive.
struct Watched {
    tcp: tokio::net::TcpStream,
    conn: Arc<Conn>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.received();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

type OpenConns = Arc<std::sync::Mutex<HashMap<u64, Arc<Conn>>>>;

/// Takes a connection out of the open set when its task ends, and frees its slot.
struct Registered {
    id: u64,
    open: OpenConns,
    count: Arc<AtomicI64>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a listener is stopped, and what it reports while it runs.
pub struct Serving {
    /// Open connections now (a metric).
    pub open: Arc<AtomicI64>,
    /// Turns true to stop: no new connection is accepted, each open one finishes the request
    /// it is serving and closes.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// How long open connections may take to finish after the stop; then they are dropped.
    pub drain: Duration,
}

/// Returns once `stop` turned true; never when its sender is gone without saying so.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// At the cap: the connection that has done nothing for the longest (idle, or still in its
/// handshake) is asked to close. Requests in progress are never cut.
fn evict_oldest_idle(open: &OpenConns) {
    let open = open.lock().unwrap_or_else(|e| e.into_inner());
    let oldest = open
        .values()
        .filter(|c| !c.evicted.load(Ordering::Relaxed))
        .filter_map(|c| {
            let (phase, since) = c.state();
            Conn::may_close(phase).then_some((since, c))
        })
        .min_by_key(|(since, _)| *since);
    if let Some((_, conn)) = oldest {
        conn.evicted.store(true, Ordering::Relaxed);
        conn.wake.notify_one();
    }
}

/// Serves `app` over TLS on `listener` until the task is dropped, within `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    limits: Limits,
) {
    let (_never, stop) = tokio::sync::watch::channel(false);
    let serving = Serving { open: Arc::default(), stop, drain: Duration::ZERO };
    serve_until(listener, config, app, limits, serving).await
}

/// Serves `app` over TLS on `listener` within `limits` until `serving.stop`; then lets open
/// connections finish their requests for at most `serving.drain`, and returns.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    limits: Limits,
    serving: Serving,
) {
    let Serving { open: count, mut stop, drain } = serving;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let max = limits.max_connections.max(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    let open = OpenConns::default();
    let limits = Arc::new(limits);
    let mut failing = false;
    for id in 0u64.. {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Logged once per streak: a full file table must not also fill the log.
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("accept failed: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        failing = false;
        let slot = loop {
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                break slot;
            }
            evict_oldest_idle(&open);
            // The evicted connection frees its slot; one that became busy meanwhile does not,
            // so look again shortly.
            if let Ok(Ok(slot)) = tokio::time::timeout(Duration::from_millis(100), slots.clone().acquire_owned()).await
            {
                break slot;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Arc::new(Conn::new());
        open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, conn.clone());
        count.fetch_add(1, Ordering::Relaxed);
        let registered = Registered { id, open: open.clone(), count: count.clone(), _slot: slot };
        let (acceptor, app, limits, stop) = (acceptor.clone(), app.clone(), limits.clone(), stop.clone());
        tokio::spawn(async move {
            let _registered = registered;
            tokio::select! {
                _ = connection(Watched { tcp, conn: conn.clone() }, peer, acceptor, app, limits.clone(), stop) => {}
                _ = conn.watch(&limits) => {}
            }
        });
    }
    drop(listener);
    // Every slot back means every connection closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(open = count.load(Ordering::Relaxed), "connections still open after {drain:?}; closing them");
    }
}

/// Parses a `--trusted-proxy` value: an address range (`10.0.0.0/8`, `fd00::/8`) or one address.
pub fn trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{text}' is neither an IP address nor an address range such as 10.0.0.0/8"))
}

/// The client a request comes from: its TCP peer, unless that peer is a trusted proxy; then
/// the address that proxy saw, found walking `X-Forwarded-For` from its right end (each proxy
/// appends the address it was reached from) past the trusted ones. Entries left of an
/// untrusted one were written by the client itself, so they are never believed; a malformed
/// entry stops the walk at the last address known good.
/// Addresses are compared in their canonical form: an IPv4 peer of a dual-stack listener
/// (`::ffff:10.0.0.5`) is the IPv4 address a range such as 10.0.0.0/8 names.
pub fn client_address(peer: SocketAddr, headers: &axum::http::HeaderMap, trusted: &[ipnet::IpNet]) -> SocketAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    if !is_trusted(&peer.ip()) {
        return peer;
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer.ip();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    SocketAddr::new(client, if client == peer.ip() { peer.port() } else { 0 })
}

/// One connection: the plain-HTTP refusal, or TLS and HTTP/1.1 with the client's address in
/// each request (per-address budgets, the log).
async fn connection(
    mut tcp: Watched,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: Arc<Limits>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;
    use tower::ServiceExt;
    // A TLS connection starts with a handshake record (0x16); anything else is plain text.
    let mut first = [0u8; 1];
    if matches!(tcp.tcp.peek(&mut first).await, Ok(1) if first[0] != 0x16) {
        let body = format!("{{\"error\":{{\"code\":\"HTTPS_REQUIRED\",\"message\":\"{HTTP_REFUSED}\"}}}}");
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
        return;
    }
    let conn = tcp.conn.clone();
    let tls = tokio::select! {
        tls = acceptor.accept(tcp) => tls,
        _ = stopped(&mut stop) => return,
    };
    let Ok(tls) = tls else { return };
    conn.set(Phase::Idle);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        if let Some(uri) = crate::legacy::normalize_path(req.uri()) {
            *req.uri_mut() = uri;
        }
        let client = client_address(peer, req.headers(), &limits.trusted_proxies);
        req.extensions_mut().insert(axum::extract::ConnectInfo(client));
        conn.request_started(!http_body::Body::is_end_stream(req.body()));
        let req = req.map(|body| axum::body::Body::new(WatchedBody { body, conn: conn.clone() }));
        let (answer, conn) = (app.clone().oneshot(req), conn.clone());
        async move {
            let answer = answer.await;
            conn.set(Phase::Idle);
            answer
        }
    });
    let http = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::pin!(http);
    tokio::select! {
        _ = http.as_mut() => return,
        _ = stopped(&mut stop) => {}
    }
    // The request in progress, if any, is answered; then the connection closes.
    http.as_mut().graceful_shutdown();
    let _ = http.await;
}

#[cfg(test)]
mod tests {
    use super::{client_address, trusted_proxy};
    use axum::http::HeaderMap;
    use std::net::SocketAddr;

    fn from(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for f in forwarded {
            headers.append("x-forwarded-for", f.parse().unwrap());
        }
        let trusted: Vec<_> = trusted.iter().map(|t| trusted_proxy(t).unwrap()).collect();
        client_address(peer.parse::<SocketAddr>().unwrap(), &headers, &trusted).ip().to_string()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_for_the_hops_it_vouches_for() {
        let lb = "10.0.0.5:40000";
        // No trusted proxy, or a peer outside the ranges: the header is the client's own text.
        assert_eq!(from(lb, &["203.0.113.9"], &[]), "10.0.0.5");
        assert_eq!(from("198.51.100.1:1", &["203.0.113.9"], &["10.0.0.0/8"]), "198.51.100.1");
        // The load balancer appended the address it was reached from.
        assert_eq!(from(lb, &["203.0.113.9"], &["10.0.0.0/8"]), "203.0.113.9");
        // A client that sends its own header cannot choose its address: the rightmost untrusted.
        assert_eq!(from(lb, &["1.2.3.4, 203.0.113.9"], &["10.0.0.0/8"]), "203.0.113.9");
        assert_eq!(from(lb, &["1.2.3.4", "203.0.113.9, 10.0.0.7"], &["10.0.0.0/8"]), "203.0.113.9");
        // Garbage stops the walk at the last good hop; no header leaves the proxy itself.
        assert_eq!(from(lb, &["203.0.113.9, nonsense"], &["10.0.0.0/8"]), "10.0.0.5");
        assert_eq!(from(lb, &[], &["10.0.0.5"]), "10.0.0.5");
        assert_eq!(from("[fd00::1]:443", &["2001:db8::7"], &["fd00::/8"]), "2001:db8::7");
        // A dual-stack listener's IPv4 peer, and a mapped address in the header.
        assert_eq!(from("[::ffff:10.0.0.5]:40000", &["::ffff:203.0.113.9"], &["10.0.0.0/8"]), "203.0.113.9");
        assert_eq!(from("[::ffff:198.51.100.1]:1", &[], &[]), "198.51.100.1");
    }

    #[test]
    fn a_trusted_proxy_is_an_address_or_a_range() {
        assert_eq!(trusted_proxy("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(trusted_proxy("fd00::/8").unwrap().to_string(), "fd00::/8");
        let refused = trusted_proxy("10.0.0.0/33").unwrap_err();
        assert!(refused.contains("'10.0.0.0/33'") && refused.contains("address range"), "{refused}");
    }
}
