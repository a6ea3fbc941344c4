//! A minimal browser for the portal over real HTTPS: it keeps cookies like a browser (by name,
//! deleted by `Max-Age=0`), does not follow redirects (tests look at them), and reads the CSRF
//! token out of the page it was given, as a browser's form would send it.

use super::Harness;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The password of the users [`portal_user`] creates.
pub const PASSWORD: &str = "portal-test-password";

pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// One answer: status, `Location`, body and headers.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("the page has a form with a CSRF token");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// The value of the read-only field that shows a secret once.
    pub fn shown_once(&self) -> String {
        let at = self.body.find(r#"id="shown-once""#).expect("the page shows a secret");
        let rest = &self.body[at..];
        let value = &rest[rest.find(r#"value=""#).unwrap() + 7..];
        value[..value.find('"').unwrap()].to_string()
    }
}

impl Browser {
    pub fn new(h: &Harness) -> Browser {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(smartlic_agent::tls::root_store(&h.server.ca_pem).unwrap())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Browser { http, base: h.base.clone(), cookies: Mutex::default() }
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let r = req.header(reqwest::header::COOKIE, self.cookie_header()).send().await.unwrap();
        for set in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            assert!(text.contains("HttpOnly") && text.contains("Secure") && text.contains("SameSite=Strict"), "{text}");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            if attributes.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers.get(reqwest::header::LOCATION).map(|l| l.to_str().unwrap().to_string());
        Page { status, location, body: r.text().await.unwrap(), headers }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form)).await
    }

    /// Posts `form` with the CSRF token of the page at `from`, as its form would.
    pub async fn submit(&self, from: &str, to: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(to, &fields).await
    }

    /// Fills in and sends the sign-in form.
    pub async fn sign_in(&self, login: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post("/signin", &[("csrf", &csrf), ("login", login), ("password", password)]).await
    }

    /// The session cookie, to replay it after sign-out.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookies.lock().unwrap().get("__Host-smartlic-session").cloned()
    }

    pub fn set_session_cookie(&self, value: &str) {
        self.cookies.lock().unwrap().insert("__Host-smartlic-session".into(), value.into());
    }
}

/// Creates a user of `domain` with `role` (bound to `va` for a virtual-account role) and the
/// test password, through the REST API as the operator; answers its login.
pub async fn portal_user(h: &Harness, domain: &str, name: &str, role: &str, va: Option<&str>) -> String {
    let mut body = json!({"name": name, "role": role, "password": PASSWORD});
    if let Some(va) = va {
        body["virtual_account"] = json!(va);
    }
    let a = h.admin("POST", &format!("/api/v1/accounts/{domain}/users"), Some(body)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.body["login"].as_str().unwrap().to_string()
}

/// The General page of the pool [`signed_in`] opens.
pub const GENERAL: &str = "/portal/acme.example/Default/general";

/// A manager with account acme.example (10 of a tag in Default), a smart-account admin signed in.
pub async fn signed_in() -> (Harness, Browser, String) {
    let h = Harness::new().await;
    h.account_with("acme.example", &[("C9500 Network Advantage", 10)]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let b = Browser::new(&h);
    let answer = b.sign_in(&login, PASSWORD).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some("/")), "{}", answer.body);
    (h, b, login)
}
