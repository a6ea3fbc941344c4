//! The portal in a real browser (issue 14): Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) against a manager on a loopback HTTPS port. An administrator signs
//! in, creates a token, a real device client registers with it and reports usage, the
//! instance and the tier lending of seed 000 (`12 (-10)` / `0 (+10)`) show, licenses are
//! reserved and returned, the simulated clock moves and the alert shows, and the
//! administrator signs out. Every page is saved as a screenshot under
//! `target/portal-screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (apt); without them the test says so and passes,
//! unless `SMARTLIC_REQUIRE_BROWSER` (set by `.ci/run`) makes that a failure.

use crate::common;

use common::portal::{portal_user, PASSWORD};
use common::{free_port, usage, Harness};
use fantoccini::{elements::Element, error::CmdError, Client, ClientBuilder, Locator};
use serde_json::json;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_proto::cert::public_key_of_certificate;
use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind, ReturnCode};
use smartlic_proto::wire::Udi;
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a loopback port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver; None when Chromium or chromedriver is missing and not required.
async fn driver() -> Option<Driver> {
    let missing: Vec<&str> =
        [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !std::path::Path::new(p).exists()).collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("SMARTLIC_REQUIRE_BROWSER").is_err(),
            "the browser tests are required but {missing:?} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("browser test skipped: {missing:?} missing (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    // Bounded wait for chromedriver to listen.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on port {port}");
}

/// A headless Chromium session. The manager's certificate comes from its own CA, which this
/// throw-away browser profile is told to accept.
async fn browser(driver: &Driver) -> Client {
    browser_with(driver, json!({})).await
}

/// [`browser`] with Chromium preferences (`prefs` of its options).
async fn browser_with(driver: &Driver, prefs: serde_json::Value) -> Client {
    let mut caps = serde_json::Map::new();
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--ignore-certificate-errors",
        "--window-size=1280,1000",
    ];
    caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args, "prefs": prefs }));
    caps.insert("acceptInsecureCerts".into(), json!(true));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Where screenshots go: `target/portal-screenshots/` of the workspace.
fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/portal-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The element once it is on the page (htmx swaps pages in after the request).
async fn find(c: &Client, css: &str) -> Element {
    find_by(c, Locator::Css(css)).await
}

async fn find_by(c: &Client, at: Locator<'_>) -> Element {
    c.wait().at_most(Duration::from_secs(10)).for_element(at).await.unwrap_or_else(|e| {
        panic!("no {at:?} on the page: {e}");
    })
}

/// Does `act` on the element at `at`, found afresh whenever it went stale: htmx may swap the
/// part of the page holding it between the find and the action (a boosted page whose heading
/// is the one before, the live search's delayed request). Bounded: 50 tries.
async fn on<T, F, Fut>(c: &Client, at: Locator<'_>, act: F) -> T
where
    F: Fn(Element) -> Fut,
    Fut: std::future::Future<Output = Result<T, CmdError>>,
{
    for _ in 0..50 {
        match act(find_by(c, at).await).await {
            Err(e) if e.is_stale_element_reference() => continue,
            done => return done.unwrap_or_else(|e| panic!("{at:?}: {e}")),
        }
    }
    panic!("{at:?} went stale 50 times");
}

/// Waits until the page's main heading is `title`.
async fn heading(c: &Client, title: &str) {
    for _ in 0..200 {
        if let Ok(h1) = c.find(Locator::Css("main h1")).await {
            if h1.text().await.unwrap_or_default() == title {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = c.source().await.unwrap_or_default();
    panic!("the page never showed '{title}': {page}");
}

async fn text_of(c: &Client, css: &str) -> String {
    on(c, Locator::Css(css), |e| async move { e.text().await }).await
}

async fn fill(c: &Client, css: &str, text: &str) {
    on(c, Locator::Css(css), |e| async move {
        e.clear().await?;
        e.send_keys(text).await
    })
    .await
}

async fn click(c: &Client, css: &str) {
    on(c, Locator::Css(css), |e| async move { e.click().await }).await
}

async fn tab(c: &Client, label: &str) {
    on(c, Locator::LinkText(label), |e| async move { e.click().await }).await
}

/// Does `act`, a click that loads a new page (JavaScript off: no htmx swap), then waits, in a
/// bounded loop, until the page it was on is gone (its root element is stale). Waiting for the
/// new page's heading alone is not enough when it is the same as the old one's: the next find
/// could return an element of the old page, which then goes stale under the test.
async fn leave<F: std::future::Future<Output = ()>>(c: &Client, act: F) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    act.await;
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page did not change: {}", c.source().await.unwrap_or_default());
}

async fn sign_in(c: &Client, base: &str, login: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    heading(c, "Sign in").await;
    fill(c, "#login", login).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.signin button").await;
    heading(c, "Inventory: General").await;
}

#[tokio::test]
async fn an_administrator_works_through_the_portal_in_chromium() {
    let Some(driver) = driver().await else { return };
    let h = Harness::new().await;
    h.account_with("acme.example", &[("C9500 Network Advantage", 12)]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let c = browser(&driver).await;
    let base = h.base.clone();

    c.goto(&format!("{base}/")).await.unwrap();
    heading(&c, "Sign in").await;
    screenshot(&c, "01-sign-in").await;
    sign_in(&c, &base, &login).await;

    // A registration token, shown once.
    fill(&c, "#description", "core switches").await;
    fill(&c, "#max_uses", "5").await;
    click(&c, "form[action$='/general'] button[type=submit]").await;
    let token = find(&c, "#shown-once").await.prop("value").await.unwrap().expect("the token");
    assert!(text_of(&c, "main table").await.contains("core switches"));
    screenshot(&c, "02-general-token-created").await;
    // The list afterwards shows the token by its first characters only (the README's picture).
    c.goto(&format!("{base}/portal/acme.example/Default/general")).await.unwrap();
    heading(&c, "Inventory: General").await;
    let listed = text_of(&c, "main").await;
    assert!(listed.contains("core switches") && !listed.contains(&token), "the whole token is shown once only");
    screenshot(&c, "02-general").await;

    // A real device registers with it and reports 10 Essentials, which Advantage lends.
    let udi = Udi { pid: "C9500-32C".into(), sn: "FCW2301L0AA".into() };
    let hostname = "<script>alert(1)</script>";
    let (key, answer) =
        h.devices.register(&udi, Some(hostname), &token, false, KeyAlgorithm::Ed25519, h.now_ms()).await.unwrap();
    let device = DeviceIdentity::from_registration(udi, Some(hostname.into()), key, answer);
    h.devices.authorize(&device, &usage(&[("C9500 Network Essentials", 10)]), h.now_ms()).await.unwrap();

    // htmx runs under the CSP without an inline style of its own, and a tab loads in place.
    let htmx = "return [typeof htmx, document.querySelectorAll('style').length]";
    assert_eq!(c.execute(htmx, vec![]).await.unwrap(), json!(["object", 0]));
    c.execute("window.stayed = true", vec![]).await.unwrap();
    tab(&c, "Product Instances").await;
    heading(&c, "Inventory: Product Instances").await;
    assert_eq!(c.execute("return window.stayed === true", vec![]).await.unwrap(), json!(true), "hx-boost");
    let list = text_of(&c, "main table").await;
    assert!(list.contains(hostname) && list.contains("FCW2301L0AA"), "the hostname shows as text: {list}");
    assert!(c.execute("return document.querySelectorAll('main script').length", vec![]).await.unwrap() == json!(0));
    screenshot(&c, "03-product-instances").await;
    fill(&c, "#q", "fcw2301").await;
    click(&c, "form[role=search] button").await;
    heading(&c, "Inventory: Product Instances").await;
    click(&c, "main table a").await;
    heading(&c, &format!("Product instance {}", device.instance_id)).await;
    assert!(text_of(&c, "dl.details").await.contains("C9500 Network Essentials × 10"));
    screenshot(&c, "04-product-instance").await;

    tab(&c, "Licenses").await;
    heading(&c, "Inventory: Licenses").await;
    let table = text_of(&c, "main table").await;
    assert!(table.contains("12 (-10)") && table.contains("0 (+10)"), "seed 000's lending: {table}");
    screenshot(&c, "05-licenses").await;

    // An offline device reserves 1 Advantage and gives it back.
    let offline_key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request =
        RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FOC0001", &offline_key.public_key()).unwrap();
    tab(&c, "Reservations").await;
    heading(&c, "Reservations").await;
    fill(&c, "#request_code", &request.to_string()).await;
    find(&c, "#tag").await.select_by_value("C9500 Network Advantage").await.unwrap();
    fill(&c, "#count", "1").await;
    click(&c, "form[action$='/reservations'] button").await;
    let code = find(&c, "#shown-once").await.prop("value").await.unwrap().expect("an authorization code");
    screenshot(&c, "06-reservation-made").await;
    let ca = public_key_of_certificate(&h.server.ca_pem).unwrap();
    let installed = Authorization::verify(&code, &[ca]).expect("the device accepts the authorization code");
    let licenses = h.licenses("acme.example", "Default").await;
    let advantage = licenses["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == "C9500 Network Advantage");
    assert_eq!(advantage.unwrap()["reserved"], 1);
    let back = ReturnCode::create(&installed, true, &offline_key).unwrap();
    fill(&c, "#return_code", &back).await;
    click(&c, "form[action$='/reservations/return'] button").await;
    find(&c, "p.notice").await;
    assert!(text_of(&c, "p.notice").await.contains("are back in Default"));
    screenshot(&c, "07-reservation-returned").await;

    // The jobs (run when the clock is set) record the day's usage for the chart over time.
    h.set_clock(&h.server.state.clock.now().to_rfc3339()).await;
    for (label, title, name) in [
        ("Event Log", "Inventory: Event Log", "08-event-log"),
        ("Reports", "Reports", "09-reports"),
        ("Administration", "Administration", "10-administration"),
    ] {
        tab(&c, label).await;
        heading(&c, title).await;
        if label == "Reports" {
            let chart = text_of(&c, "svg.chart").await;
            assert!(chart.contains("10 used of 0 (+10)") && chart.contains("0 used of 12 (-10)"), "{chart}");
            let history = text_of(&c, "main").await;
            assert!(history.contains("10 in use") && history.contains("12 purchased"), "{history}");
        }
        screenshot(&c, name).await;
    }

    // Forty days later the device has been silent: an alert. The idle session ended meanwhile.
    h.set_clock(&(h.server.state.clock.now().plus_days(40)).to_rfc3339()).await;
    c.goto(&format!("{base}/portal/acme.example/Default/alerts")).await.unwrap();
    heading(&c, "Sign in").await;
    sign_in(&c, &base, &login).await;
    tab(&c, "Alerts").await;
    heading(&c, "Alerts").await;
    let alerts = text_of(&c, "main").await;
    assert!(alerts.contains(&device.instance_id) || alerts.contains("FCW2301L0AA"), "{alerts}");
    screenshot(&c, "11-alerts").await;

    click(&c, "form[action='/signout'] button").await;
    heading(&c, "Sign in").await;
    c.goto(&format!("{base}/portal/acme.example/Default/general")).await.unwrap();
    heading(&c, "Sign in").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_portal_works_with_javascript_off() {
    let Some(driver) = driver().await else { return };
    let h = Harness::new().await;
    h.account_with("acme.example", &[("C9500 Network Advantage", 12)]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let c = browser_with(&driver, json!({"profile.managed_default_content_settings.javascript": 2})).await;
    sign_in(&c, &h.base, &login).await;
    let htmx = c.execute("return typeof htmx", vec![]).await.ok();
    assert!(matches!(htmx.as_ref().and_then(|v| v.as_str()), None | Some("undefined")), "htmx is off: {htmx:?}");

    fill(&c, "#description", "no script").await;
    leave(&c, click(&c, "form[action$='/general'] button[type=submit]")).await;
    let token = find(&c, "#shown-once").await.prop("value").await.unwrap().expect("the token");
    assert!(!token.is_empty());
    leave(&c, tab(&c, "Licenses")).await;
    heading(&c, "Inventory: Licenses").await;
    assert!(text_of(&c, "main table").await.contains("12"));
    find(&c, "#va").await.select_by_value("Default").await.unwrap();
    // The same page again, through the selector's form: its heading does not change.
    leave(&c, click(&c, "header form[action='/portal/go'] button")).await;
    heading(&c, "Inventory: Licenses").await;
    leave(&c, click(&c, "form[action='/signout'] button")).await;
    heading(&c, "Sign in").await;
    c.close().await.unwrap();
}
