//! The HTTPS side of `smartlic admin`: trust only the manager's CA, log in once, send one call,
//! and turn every failure into a one-line message naming what is wrong.

use super::Call;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;

/// How the CLI obtains its bearer token: from `POST /oauth/token`, or given as it is.
#[derive(Debug, PartialEq)]
pub enum Login {
    ClientCredentials {
        client_id: String,
        secret: String,
    },
    Password {
        username: String,
        password: String,
    },
    /// A bearer token used as it is (the fleet orchestrator's administrator token).
    Bearer {
        token: String,
    },
}

/// An authenticated connection to the manager (a clone shares the connection pool).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// The server URL without a trailing slash; paths start with one.
    base: String,
    bearer: String,
}

impl Api {
    pub async fn login(server: &str, ca: &Path, login: &Login) -> Result<Api> {
        let url = reqwest::Url::parse(server).map_err(|e| anyhow!("--server {server} is not a URL: {e}"))?;
        if url.scheme() != "https" {
            bail!("--server {server} must be an https:// URL (the manager only speaks HTTPS)");
        }
        let pem = std::fs::read_to_string(ca)
            .map_err(|e| anyhow!("cannot read the CA certificate {}: {e}; pass --ca", ca.display()))?;
        let http = smartlic_agent::tls::https_client(&pem)
            .map_err(|e| anyhow!("the CA certificate {} is not usable: {e}; pass --ca", ca.display()))?;
        let base = server.trim_end_matches('/').to_owned();
        let form: [(&str, &str); 3] = match login {
            Login::ClientCredentials { client_id, secret } => {
                [("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)]
            }
            Login::Password { username, password } => {
                [("grant_type", "password"), ("username", username), ("password", password)]
            }
            Login::Bearer { token } => return Ok(Api { http, base, bearer: token.clone() }),
        };
        let request = http.post(format!("{base}/oauth/token")).form(&form);
        let answer: Value =
            serde_json::from_str(&answer(&base, request).await?).context("the token endpoint did not answer JSON")?;
        let bearer =
            answer["access_token"].as_str().context("the token endpoint answered without an access_token")?.to_owned();
        Ok(Api { http, base, bearer })
    }

    /// Sends the call and returns the body of a successful answer.
    pub async fn send(&self, call: &Call) -> Result<String> {
        let mut request = self.request(call);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        if let Some(file) = &call.upload {
            let yaml = tokio::fs::read(file).await.with_context(|| format!("cannot read {}", file.display()))?;
            request = request.header(reqwest::header::CONTENT_TYPE, "application/yaml").body(yaml);
        }
        answer(&self.base, request).await
    }

    fn request(&self, call: &Call) -> reqwest::RequestBuilder {
        self.http.request(call.method.clone(), format!("{}{}", self.base, call.path)).bearer_auth(&self.bearer)
    }

    /// Sends the call and returns a successful answer unread, for a body too large to hold.
    pub async fn stream(&self, call: &Call) -> Result<reqwest::Response> {
        let response =
            self.request(call).send().await.with_context(|| format!("cannot reach the manager at {}", self.base))?;
        match response.status().is_success() {
            true => Ok(response),
            false => {
                let status = response.status();
                Err(server_error(status, &response.text().await.unwrap_or_default()))
            }
        }
    }
}

async fn answer(base: &str, request: reqwest::RequestBuilder) -> Result<String> {
    let reach = || format!("cannot reach the manager at {base}");
    let response = request.send().await.with_context(reach)?;
    let status = response.status();
    let body = response.text().await.with_context(reach)?;
    match status.is_success() {
        true => Ok(body),
        false => Err(server_error(status, &body)),
    }
}

/// `<message> (<code>, HTTP <status>)` from the API's error shape, the token endpoint's OAuth2
/// shape (`{"error":"invalid_client","error_description":..}`) or, failing both, the raw body.
fn server_error(status: StatusCode, body: &str) -> anyhow::Error {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    let (code, message) = match &v["error"] {
        Value::String(code) => (Some(code.as_str()), v["error_description"].as_str()),
        e => (e["code"].as_str(), e["message"].as_str()),
    };
    match (code, message) {
        (Some(code), message) => {
            anyhow!("{} ({code}, HTTP {})", message.unwrap_or(code), status.as_u16())
        }
        (None, _) => {
            let text: String = body.trim().chars().take(200).collect();
            match text.is_empty() {
                true => anyhow!("HTTP {status}"),
                false => anyhow!("HTTP {status}: {}", text.replace(char::is_control, " ")),
            }
        }
    }
}

/// One path segment, percent-encoded (RFC 3986 unreserved characters kept). Empty, `.` and
/// `..` are refused: URL parsers resolve dot segments even when encoded, which would silently
/// address another resource (`instances/..` is the account itself).
pub fn segment(text: &str) -> Result<String> {
    if matches!(text, "" | "." | "..") {
        bail!("'{text}' cannot be used as a name in a request path");
    }
    Ok(text
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect())
}

/// Reads one secret line from standard input (`--password-stdin`), without its line ending.
pub fn read_line(input: &mut dyn BufRead, what: &str) -> Result<String> {
    let mut line = String::new();
    input.read_line(&mut line).with_context(|| format!("cannot read {what} from standard input"))?;
    let line = line.trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        bail!("no {what} on standard input (one line expected)");
    }
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_unreserved_characters_only() {
        assert_eq!(segment("example.com").unwrap(), "example.com");
        assert_eq!(segment("Lab East").unwrap(), "Lab%20East");
        assert_eq!(segment("a/b?c#d%e").unwrap(), "a%2Fb%3Fc%23d%25e");
        assert_eq!(segment("Zürich").unwrap(), "Z%C3%BCrich");
        assert_eq!(segment("...").unwrap(), "...");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err());
        }
    }

    #[test]
    fn errors_read_like_the_contract() {
        let body = r#"{"error":{"code":"CONFLICT","message":"not enough licenses","field":"count"}}"#;
        assert_eq!(server_error(StatusCode::CONFLICT, body).to_string(), "not enough licenses (CONFLICT, HTTP 409)");
        let oauth = r#"{"error":"invalid_client","error_description":"wrong client credentials"}"#;
        assert_eq!(
            server_error(StatusCode::UNAUTHORIZED, oauth).to_string(),
            "wrong client credentials (invalid_client, HTTP 401)"
        );
        assert_eq!(
            server_error(StatusCode::PAYLOAD_TOO_LARGE, "too\nbig").to_string(),
            "HTTP 413 Payload Too Large: too big"
        );
    }

    #[test]
    fn secret_lines() {
        let mut input = "one\r\ntwo\n".as_bytes();
        assert_eq!(read_line(&mut input, "x").unwrap(), "one");
        assert_eq!(read_line(&mut input, "x").unwrap(), "two");
        assert!(read_line(&mut input, "x").is_err());
    }
}
