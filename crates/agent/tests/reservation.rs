//! Offline reservation on the device, through its CLI session: request, install with the
//! signature and request checks, show, term expiry on the device clock, return and cancel. The
//! manager side is stood in for by a CA signing authorization codes as the manager does.

use smartlic_agent::device::Device;
use smartlic_agent::session::{Reply, Session};
use smartlic_core::{Clock, SimulatedClock, Timestamp};
use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind, ReservedEntitlement, ReturnCode};
use smartlic_proto::CertificateAuthority;
use std::path::Path;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

struct TestClock(Arc<SimulatedClock>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

struct Bench {
    dir: tempfile::TempDir,
    clock: Arc<SimulatedClock>,
    ca: CertificateAuthority,
    session: Session,
}

impl Bench {
    async fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SimulatedClock::new());
        let ca = CertificateAuthority::generate("smartlic manager CA", clock.now().0 / 1000 - 60).unwrap();
        let device = Device::init(
            &dir.path().join("dev"),
            "C9300-24UX",
            "FCW2134L0RN",
            None,
            Default::default(),
            Box::new(TestClock(clock.clone())),
        )
        .unwrap();
        let mut b = Bench { dir, clock, ca, session: Session::new(device, true) };
        let manager_ca = b.ca.cert_pem().to_string();
        b.trust("SLA-TrustPoint", &manager_ca).await;
        // A manager URL on a closed port: a reserved device must never try it.
        b.ok("license smart url https://127.0.0.1:9/").await;
        b
    }

    /// Imports `pem` as trust point `name`.
    async fn trust(&mut self, name: &str, pem: &str) {
        self.ok(&format!("crypto pki trustpoint {name}")).await;
        self.ok("end").await;
        self.ok(&format!("crypto pki authenticate {name}")).await;
        for line in pem.lines() {
            self.session.line(line).await.unwrap();
        }
    }

    async fn line(&mut self, line: &str) -> Reply {
        self.session.line(line).await.unwrap()
    }

    async fn ok(&mut self, line: &str) -> String {
        let reply = self.line(line).await;
        assert!(!reply.error, "{line}: {}", reply.output);
        reply.output
    }

    async fn refused(&mut self, line: &str) -> String {
        let reply = self.line(line).await;
        assert!(reply.error, "{line} was accepted: {}", reply.output);
        reply.output
    }

    /// `request local` → the printed code, parsed as the manager will.
    async fn request(&mut self, kind: &str) -> RequestCode {
        let out = self.ok(&format!("license smart reservation request {kind}")).await;
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("Enter this request code in the Cisco Smart Software Manager portal:"));
        RequestCode::parse(lines.next().unwrap()).unwrap()
    }

    /// The authorization code the manager would sign for `request`.
    fn authorize(&self, request: &RequestCode, entitlements: Vec<ReservedEntitlement>) -> String {
        self.authorize_by(&self.ca, request, entitlements)
    }

    /// The authorization code for `request` as `signer` would sign it.
    fn authorize_by(
        &self,
        signer: &CertificateAuthority,
        request: &RequestCode,
        entitlements: Vec<ReservedEntitlement>,
    ) -> String {
        let auth = Authorization {
            kind: request.kind,
            piid: "6ca07f56-1a2b-4c3d-8e9f-000000000001".into(),
            timestamp: self.clock.now().0,
            request_code: request.to_string(),
            entitlements,
        };
        auth.to_code(signer.signer(), &request.udi()).unwrap()
    }

    fn reopen(&mut self) {
        let device = Device::open(&self.dir.path().join("dev"), Box::new(TestClock(self.clock.clone()))).unwrap();
        self.session = Session::new(device, true);
    }
}

fn license(tag: &str, count: i64, end: Option<i64>) -> ReservedEntitlement {
    ReservedEntitlement {
        tag: tag.into(),
        count,
        start: None,
        end,
        license_type: if end.is_some() { "TERM" } else { "PERPETUAL" }.into(),
        display_name: tag.into(),
        subscription_id: String::new(),
    }
}

/// `COUNT STATUS` of the summary's usage row of `tag`.
fn usage_status<'a>(summary: &'a str, tag: &str) -> &'a str {
    let row = summary.lines().rev().find(|l| l.contains(&format!("({tag})"))).expect("a usage row");
    row.split_once(&format!("({tag})")).unwrap().1.trim()
}

#[tokio::test]
async fn specific_reservation_request_install_show_expire_and_return() {
    let mut b = Bench::new().await;
    assert!(b.refused("license smart reservation request local").await.contains("not enabled"));
    b.ok("license smart reservation").await;
    b.ok("license feature \"C9300 Network Advantage\" count 1").await;
    b.ok("license feature \"C9300 DNA Advantage\" count 1").await;
    let refused = b.refused("license smart reservation install \"<specificPLR></specificPLR>\"").await;
    assert!(refused.starts_with("Reservation install file failed: No reservation request is in progress"), "{refused}");

    let request = b.request("local").await;
    assert_eq!(request.kind, ReservationKind::Specific);
    assert_eq!((request.pid.as_str(), request.sn.as_str()), ("C9300-24UX", "FCW2134L0RN"));
    // The pending request survives a restart; asking again prints the same code.
    b.reopen();
    assert_eq!(b.request("local").await, request);
    assert!(b.ok("show license status").await.contains("Status: RESERVATION IN PROGRESS"));

    // A code made for another request is refused, and so is one signed by another manager.
    let other_key = smartlic_proto::SigningKey::generate(smartlic_proto::KeyAlgorithm::Ed25519).unwrap();
    let other =
        RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &other_key.public_key()).unwrap();
    let foreign = b.authorize(&other, vec![license("C9300 Network Advantage", 1, None)]);
    let refused = b.refused(&format!("license smart reservation install \"{foreign}\"")).await;
    assert_eq!(
        refused,
        "Reservation install file failed: The Reservation Authorization Code does not match the Reservation Request Code"
    );
    let rogue = CertificateAuthority::generate("rogue", b.clock.now().0 / 1000).unwrap();
    let forged = Authorization {
        kind: request.kind,
        piid: "x".into(),
        timestamp: 0,
        request_code: request.to_string(),
        entitlements: vec![],
    }
    .to_code(rogue.signer(), &request.udi())
    .unwrap();
    let refused = b.refused(&format!("license smart reservation install \"{forged}\"")).await;
    assert!(refused.contains("signature does not match any trusted manager key"), "{refused}");

    // Install from a file: the network license for 30 days, not the DNA one.
    let end = b.clock.now().0 + 30 * DAY_MS;
    let code = b.authorize(&request, vec![license("C9300 Network Advantage", 1, Some(end))]);
    let file = b.dir.path().join("AC_FCW2134L0RN.xml");
    std::fs::write(&file, &code).unwrap();
    let out = b.ok(&format!("license smart reservation install file {}", file.display())).await;
    let confirmation = out.strip_prefix("Reservation install file successful\nLast Confirmation code ").unwrap().trim();
    assert!(confirmation.len() == 8 && confirmation.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    let log = b.ok("show license eventlog").await;
    assert!(log.contains("%SMART_LIC-6-RESERVED_INSTALLED: Specific License Reservation Authorization code installed for udi PID:C9300-24UX,SN:FCW2134L0RN"), "{log}");
    assert!(log.contains("%SMART_LIC-3-NOT_AUTHORIZED: The entitlement C9300 DNA Advantage in Not Authorized to be used. Reason: License not present in SLR auth code"), "{log}");

    let status = b.ok("show license status").await;
    assert!(status.contains("License Reservation is ENABLED"), "{status}");
    assert!(status.contains("Status: REGISTERED - SPECIFIC LICENSE RESERVATION"), "{status}");
    assert!(status.contains("Status: AUTHORIZED - RESERVED on "), "{status}");
    assert!(status.contains(&format!("Last Confirmation code: {confirmation}")), "{status}");
    assert!(status.contains("C9300 Network Advantage (C9300 Network Advantage): 1, TERM, ends "), "{status}");
    let summary = b.ok("show license summary").await;
    assert_eq!(usage_status(&summary, "C9300 Network Advantage"), "1 AUTHORIZED", "{summary}");
    assert_eq!(usage_status(&summary, "C9300 DNA Advantage"), "1 NOT AUTHORIZED", "{summary}");
    let all = b.ok("show license all").await;
    assert!(all.contains("Reservation status: SPECIFIC INSTALLED"), "{all}");
    assert!(all.contains("Total reserved count: 1"), "{all}");
    assert!(all.contains(&format!("Reservation authorization code: {}", code.trim())), "{all}");

    // A year passes on the device clock: no manager contact at all, the term ends on time.
    b.clock.advance(365 * DAY_MS);
    let status = b.ok("show license status").await;
    assert!(!status.contains("Communication Attempt"), "{status}");
    let summary = b.ok("show license summary").await;
    assert_eq!(usage_status(&summary, "C9300 Network Advantage"), "1 NOT AUTHORIZED", "{summary}");
    let log = b.ok("show license eventlog").await;
    assert!(log.contains("C9300 Network Advantage in Not Authorized to be used. Reason: The license term in the SLR auth code has ended"), "{log}");
    assert!(!log.contains("Communication"), "{log}");
    assert!(b.refused("license smart register idtoken QUJD").await.contains("reservation"));

    // Return: one-shot sessions need `force`; the return code proves the device key.
    assert!(b.refused("license smart reservation return local").await.contains("force"));
    let out = b.ok("license smart reservation return local force").await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Enter this return code in Cisco Smart Software Manager portal:"));
    let return_code = lines.next().unwrap();
    let parsed = ReturnCode::parse(return_code).unwrap();
    assert!(parsed.was_installed);
    assert_eq!(parsed.verify(&request), Ok(()));
    assert_eq!(parsed.verify(&other), Err(smartlic_proto::reservation::ReservationError::ReturnKeyMismatch));
    let status = b.ok("show license status").await;
    assert!(status.contains("Status: UNREGISTERED"), "{status}");
    assert!(b.ok("show license all").await.contains(&format!("Last return code: {return_code}")));
    assert!(!b.dir.path().join("dev/reservation-key.pem").exists(), "the key goes with the reservation");
    assert!(b.refused("license smart reservation return local force").await.contains("No license reservation"));
}

#[tokio::test]
async fn universal_request_cancel_and_return_of_a_code_never_installed() {
    let mut b = Bench::new().await;
    b.ok("license smart reservation").await;
    let request = b.request("universal").await;
    assert_eq!(request.kind, ReservationKind::Universal);
    assert!(b.refused("license smart reservation request local").await.contains("Another reservation request"));
    b.ok("license smart reservation cancel").await;
    assert!(b.refused("license smart reservation cancel").await.contains("No reservation request"));
    assert!(!Path::new(&b.dir.path().join("dev/reservation-key.pem")).exists());

    // A code for the new request that the operator decides not to install is given back.
    let request = b.request("universal").await;
    let code = b.authorize(&request, vec![]);
    let out = b.ok(&format!("license smart reservation return authorization \"{code}\"")).await;
    let return_code = out.lines().nth(1).unwrap();
    let parsed = ReturnCode::parse(return_code).unwrap();
    assert!(!parsed.was_installed);
    assert_eq!(parsed.verify(&request), Ok(()));
    assert!(b.ok("show license status").await.contains("Status: UNREGISTERED"));

    // Installed universal: everything in use is authorized.
    let request = b.request("universal").await;
    let code = b.authorize(&request, vec![]);
    b.ok(&format!("license smart reservation install {code}")).await;
    b.ok("license feature \"anything\" count 3").await;
    let summary = b.ok("show license summary").await;
    assert!(summary.contains("Status: REGISTERED - UNIVERSAL LICENSE RESERVATION"), "{summary}");
    assert_eq!(usage_status(&summary, "anything"), "3 AUTHORIZED", "{summary}");
    assert!(b.refused("no license smart reservation").await.contains("return or cancel it first"));
}

#[tokio::test]
async fn no_request_while_a_registration_is_under_way() {
    let mut b = Bench::new().await;
    b.ok("license smart reservation").await;
    // The manager is unreachable: the registration stays in progress, retrying.
    b.ok("license smart register idtoken QUJD").await;
    assert!(b.refused("license smart reservation request local").await.contains("registration is in progress"));
    b.ok("license smart deregister").await;
    b.request("local").await;
    assert!(b.refused("license smart register idtoken QUJD").await.contains("reservation request is in progress"));
}

/// Only the manager's CA signs authorization codes: not a TLS-inspecting proxy's CA imported as
/// another trust point (G-2). With several CAs and none designated as SLA-TrustPoint, the device
/// cannot tell which is the manager's, so it takes none.
#[tokio::test]
async fn authorization_codes_are_trusted_from_the_licensing_trust_point_only() {
    let mut b = Bench::new().await;
    let proxy = CertificateAuthority::generate("inspecting proxy CA", b.clock.now().0 / 1000 - 60).unwrap();
    b.trust("A-Proxy", proxy.cert_pem()).await;
    b.ok("license smart reservation").await;
    let request = b.request("local").await;
    let forged = b.authorize_by(&proxy, &request, vec![license("C9300 Network Advantage", 1, None)]);
    let refused = b.refused(&format!("license smart reservation install \"{forged}\"")).await;
    assert!(refused.contains("signature does not match any trusted manager key"), "{refused}");

    let genuine = b.authorize(&request, vec![license("C9300 Network Advantage", 1, None)]);
    let manager_ca = b.ca.cert_pem().to_string();
    b.ok("no crypto pki trustpoint SLA-TrustPoint").await;
    b.trust("LicRoot", &manager_ca).await;
    let refused = b.refused(&format!("license smart reservation install \"{genuine}\"")).await;
    assert!(refused.contains("import it as SLA-TrustPoint"), "{refused}");
    b.trust("SLA-TrustPoint", &manager_ca).await;
    let out = b.ok(&format!("license smart reservation install \"{genuine}\"")).await;
    assert!(out.starts_with("Reservation install file successful"), "{out}");
}
