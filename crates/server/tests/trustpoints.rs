//! Trust points of every common CA kind (A-11, G-2). Corporate roots, TLS-inspecting proxies'
//! CAs and most certificates behind `--tls-cert` are RSA, some ECDSA P-384: a manager serving a
//! certificate such a CA issued is reached by a device that imported that CA as a second trust
//! point (`LicRoot`), directly and through a forward proxy, while the manager's answers stay
//! checked against its own CA (`SLA-TrustPoint`). And a manager listening on every interface
//! issues its certificate for the names devices elsewhere use (`--hostname`).
//!
//! The RSA and P-384 CAs are made by the `openssl` command (rcgen over ring cannot generate RSA
//! keys); without it those tests say "ignored: openssl missing" and pass, unless
//! `SMARTLIC_REQUIRE_OPENSSL=1` (set by `.ci/run`, which installs it) makes that a failure.

use crate::common;

use common::device_cli::*;
use common::*;
use smartlic_agent::session::Session;
use smartlic_server::tls::names_for;
use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl_present() -> bool {
    let present = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !present {
        assert!(std::env::var("SMARTLIC_REQUIRE_OPENSSL").is_err(), "openssl is required but not installed");
        eprintln!("ignored: openssl missing (apt-get install openssl)");
    }
    present
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An operator's CA and the TLS certificate for 127.0.0.1 it issued, with its key.
struct OperatorCa {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

/// Makes an [`OperatorCa`] in `dir`; `newkey` are the `openssl req` options choosing the CA's
/// and the certificate's key (`-newkey rsa:4096`, ...).
fn operator_ca(dir: &Path, newkey: &[&str]) -> OperatorCa {
    let ca = [
        &["req", "-x509", "-nodes", "-keyout", "corp-ca.key", "-out", "corp-ca.pem", "-days", "3650"][..],
        &["-subj", "/O=Example Corp/CN=Example Corp Root CA", "-addext", "basicConstraints=critical,CA:TRUE"],
        &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        newkey,
    ];
    openssl(dir, &ca.concat());
    openssl(
        dir,
        &[&["req", "-new", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1"], newkey]
            .concat(),
    );
    std::fs::write(
        dir.join("tls.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &["x509", "-req", "-in", "tls.csr", "-CA", "corp-ca.pem", "-CAkey", "corp-ca.key", "-set_serial", "2"]
            .into_iter()
            .chain(["-days", "365", "-extfile", "tls.ext", "-out", "tls.pem"])
            .collect::<Vec<_>>(),
    );
    OperatorCa {
        ca_pem: std::fs::read_to_string(dir.join("corp-ca.pem")).unwrap(),
        cert: dir.join("tls.pem"),
        key: dir.join("tls.key"),
    }
}

/// The lines `show crypto pki trustpoints` prints for trust point `name`.
async fn trustpoint_shown(s: &mut Session, name: &str) -> String {
    let shown = run(s, "show crypto pki trustpoints").await;
    let header = format!("Trustpoint {name}:");
    let start = shown.find(&header).unwrap_or_else(|| panic!("no {header} in\n{shown}"));
    let rest = &shown[start + header.len()..];
    rest[..rest.find("Trustpoint ").unwrap_or(rest.len())].to_string()
}

/// A device trusting the manager's CA (`SLA-TrustPoint`) and the operator's (`LicRoot`), using
/// one ACI Advantage license.
async fn trusting_device(h: &Harness, dir: &Path, sn: &str, clock: &Frozen, corp_ca: &str) -> Session {
    let mut s = new_device(dir, sn, clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    trust(&mut s, "LicRoot", corp_ca).await;
    run(&mut s, "license feature \"ACI Advantage\" count 1").await;
    s
}

async fn registers(s: &mut Session, token: &str) {
    run(s, &format!("license smart register idtoken {token}")).await;
    let shown = status(s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    assert!(authorization(&shown)[0].starts_with("Status: AUTHORIZED on "), "{shown}");
}

#[tokio::test]
async fn devices_reach_a_manager_whose_certificate_an_rsa_or_p384_ca_issued_directly_and_via_a_proxy() {
    if !openssl_present() {
        return;
    }
    let proxy = tinyproxy(None).await;
    let p384 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"];
    for (newkey, key_shown) in [
        (&["-newkey", "rsa:2048"][..], "RSA (2048 bit)"),
        (&["-newkey", "rsa:4096"][..], "RSA (4096 bit)"),
        (&p384[..], "ECDSA P-384 (384 bit)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let corp = operator_ca(dir.path(), newkey);
        let mut config = server_config(dir.path());
        (config.tls_cert, config.tls_key) = (Some(corp.cert), Some(corp.key));
        let h = Harness::start_trusting(dir, config, &corp.ca_pem).await;
        let token = h.account_with("example.com", &[("ACI Advantage", 2)]).await;
        let clock = Frozen::at(&h);
        let devices = tempfile::tempdir().unwrap();

        // Trusting the manager's CA alone, the device cannot reach it: its TLS certificate is
        // the operator CA's.
        let mut direct = new_device(&devices.path().join("direct"), "FCH2001V0AB", &clock);
        trust(&mut direct, "SLA-TrustPoint", &h.server.ca_pem).await;
        run(&mut direct, &format!("license smart url {}", h.base)).await;
        run(&mut direct, &format!("license smart register idtoken {token}")).await;
        let shown = status(&mut direct).await;
        assert!(shown.contains("the server certificate is not trusted"), "{key_shown}: {shown}");

        // With the operator's CA imported beside it, labelled as what it is, it registers.
        trust(&mut direct, "LicRoot", &corp.ca_pem).await;
        let licroot = trustpoint_shown(&mut direct, "LicRoot").await;
        assert!(licroot.contains(&format!("\n    Public key: {key_shown}\n")), "{licroot}");
        let sla = trustpoint_shown(&mut direct, "SLA-TrustPoint").await;
        assert!(sla.contains("\n    Public key: ECDSA P-256 (256 bit)\n"), "{sla}");
        run(&mut direct, "license feature \"ACI Advantage\" count 1").await;
        registers(&mut direct, &token).await;

        // Through a forward proxy (CONNECT), the same.
        let mut registered = 1;
        if let Some(proxy) = &proxy {
            let mut via = trusting_device(&h, &devices.path().join("via"), "FCH2001V0AC", &clock, &corp.ca_pem).await;
            callhome_via_proxy(&mut via, &h.base, proxy.port).await;
            registers(&mut via, &token).await;
            registered += 1;
        }
        let instances = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
        assert_eq!(instances.body["instances"].as_array().unwrap().len(), registered, "{key_shown}");
        h.server.stop();
    }
}

/// A CA whose key TLS could not verify with is refused when imported, naming what it is, and
/// the trust point stays without a certificate.
#[tokio::test]
async fn a_ca_with_a_key_tls_cannot_use_is_refused_and_nothing_is_imported() {
    let h = Harness::new().await;
    let clock = Frozen::at(&h);
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_device(dir.path(), "FCH2001V0AB", &clock);
    for (pem, named) in [
        (include_str!("../../proto/testdata/rsa1024-ca.pem"), "RSA key of 1024 bits"),
        (include_str!("../../proto/testdata/p521-ca.pem"), "elliptic curve P-521"),
    ] {
        run(&mut s, "crypto pki trustpoint LicRoot").await;
        run(&mut s, "end").await;
        run(&mut s, "crypto pki authenticate LicRoot").await;
        let mut last = None;
        for line in pem.lines() {
            last = Some(s.line(line).await.unwrap());
        }
        let refused = last.unwrap();
        assert!(refused.error, "{}", refused.output);
        assert!(refused.output.contains(&format!("not supported: {named}")), "{}", refused.output);
        assert!(refused.output.contains("nothing imported"), "{}", refused.output);
        assert!(trustpoint_shown(&mut s, "LicRoot").await.contains("Certificate not configured."));
    }
}

/// `--hostname` puts the names a device elsewhere uses into the generated certificate: here
/// 127.0.0.2 (another address of this host than the loopback names) and a DNS name resolving to
/// it. Without it, the same address is refused by TLS.
#[tokio::test]
async fn a_manager_on_every_interface_is_reached_by_the_names_given_with_hostname() {
    let names = ["manager.example.com".to_string(), "127.0.0.2".to_string()];
    for hostnames in [vec![], names.to_vec()] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = server_config(dir.path());
        config.listen = "0.0.0.0:0".parse().unwrap();
        config.hostnames = hostnames.clone();
        let h = Harness::start(dir, config).await;
        let port = h.server.local_addr.port();
        let remote: std::net::SocketAddr = ([127, 0, 0, 2], port).into();
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(smartlic_agent::tls::root_store(&h.server.ca_pem).unwrap())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .resolve("manager.example.com", remote)
            .no_proxy()
            .build()
            .unwrap();
        for url in [format!("https://manager.example.com:{port}/health"), format!("https://{remote}/health")] {
            let answer = http.get(&url).send().await;
            match hostnames.is_empty() {
                true => assert!(answer.is_err(), "{url} is not in the default certificate"),
                false => assert_eq!(answer.unwrap().status(), 200, "{url}"),
            }
        }
        if hostnames.is_empty() {
            continue;
        }
        // A device pointed at that address registers.
        let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
        let devices = tempfile::tempdir().unwrap();
        let mut s = new_device(devices.path(), "FCH2001V0AB", &Frozen::at(&h));
        trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
        run(&mut s, &format!("license smart url https://{remote}")).await;
        run(&mut s, "license feature \"ACI Advantage\" count 1").await;
        registers(&mut s, &token).await;
    }
}

#[test]
fn the_generated_certificate_names_the_listen_address_and_each_hostname() {
    let names = |listen: &str, extra: &[&str]| {
        names_for(&listen.parse().unwrap(), &extra.iter().map(|n| n.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(names("0.0.0.0:8443", &[]).unwrap(), ["localhost", "127.0.0.1", "::1"]);
    assert_eq!(names("[::]:8443", &["lic.example.com"]).unwrap(), ["localhost", "127.0.0.1", "::1", "lic.example.com"]);
    assert_eq!(names("127.0.0.1:8443", &["localhost"]).unwrap(), ["127.0.0.1", "localhost"]);
    assert_eq!(
        names("10.0.0.5:443", &["10.0.0.6", "swapi.cisco.com"]).unwrap(),
        ["10.0.0.5", "10.0.0.6", "swapi.cisco.com"]
    );
    for bad in ["bad name", "", "*.example.com", "host/path", "exa\nmple.com"] {
        let refused = names("0.0.0.0:8443", &["ok.example.com", bad]).unwrap_err().to_string();
        assert_eq!(refused, format!("--hostname {bad:?} is neither a DNS name nor an IP address"));
    }
}

/// A bad name stops the start before anything is stored; `--hostname` with `--tls-cert` too.
#[tokio::test]
async fn a_bad_hostname_is_refused_at_start_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = server_config(&data);
    config.hostnames = vec!["lic.example.com".into(), "not a name".into()];
    let refused = smartlic_server::start(config.clone()).await.err().expect("refused").to_string();
    assert_eq!(refused, "--hostname \"not a name\" is neither a DNS name nor an IP address");
    assert!(!data.exists(), "nothing was created");
    config.hostnames = vec!["lic.example.com".into()];
    (config.tls_cert, config.tls_key) = (Some(dir.path().join("own.pem")), Some(dir.path().join("own-key.pem")));
    let refused = smartlic_server::start(config).await.err().expect("refused").to_string();
    assert!(refused.contains("--hostname names the generated TLS certificate"), "{refused}");
    assert!(!data.exists(), "nothing was created");
}
