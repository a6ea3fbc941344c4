//! The synchronisation request as a stream (S-3). A full request carries every instance of the
//! satellite's pools, about 130 MB for a million: neither side may hold it whole (the
//! satellite stays under 256 MB with a million instances, also while it synchronises), so the
//! file is written, signed, checked and read a part at a time.
//!
//! The file is still the YAML a user carries by hand: a YAML stream of small documents, each a
//! payload (YAML text as signed) like the other synchronisation files. The first document
//! names the kind and carries the request's head ([`RequestHead`]); each next one carries a
//! part of at most [`PART_SIZE`] instances of one pool ([`RequestPart`]); the last one carries
//! the signature and the end mark, so a file cut short lacks it. The signature covers a SHA-256
//! digest of every payload in order (each preceded by its length), computed as they are written
//! or read: a reader checks the whole file first ([`check_request`]) and reads it again to
//! apply it ([`RequestParts`]), hashing again, so a file changed in between ends the second
//! read with an error before anything it carried is kept.

use super::{RemovedInstance, ReportedInstance, SignedBy, SyncError, END, KIND_SYNC_REQUEST};
use crate::keys::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// Most instances (or removed ones) a part carries: a part in memory is about 300 KB.
pub const PART_SIZE: usize = 1000;
/// The largest document a reader takes: far above a part's, it bounds what garbage costs.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;
const WHAT: &str = "synchronisation request";

/// A request's fields but its instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestHead {
    /// The satellite's identifier in the cloud (from the approval).
    pub satellite_id: i64,
    pub local_account: String,
    pub smart_account: String,
    /// 1, 2, ... per local account; each request has a new one.
    pub sequence: i64,
    /// The sequence of the last response the satellite applied (0: none yet).
    pub acknowledges: i64,
    /// Full: the pools' whole state, which replaces the cloud's copy; standard: the changes.
    pub full: bool,
    /// Days until the satellite's next scheduled synchronisation (the cloud shows when it is due).
    pub interval_days: i64,
    /// Satellite time, Unix milliseconds.
    pub created_at: i64,
    /// The satellite's key, which signed the request.
    pub signed_by: SignedBy,
}

/// Some instances of one pool: in a full request, all of them over its parts; in a standard
/// one, those changed since the request the last applied response answered, and those removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestPart {
    pub pool: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<ReportedInstance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RemovedInstance>,
}

/// One document of the file: the head has a kind and a payload, a part a payload, the seal a
/// signature and the end mark.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

/// What the signature covers, hashed as the payloads go by.
struct Digest(ring::digest::Context);

impl Digest {
    fn new() -> Digest {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(format!("smartlic-sync-v2\n{KIND_SYNC_REQUEST}\n").as_bytes());
        Digest(context)
    }

    fn add(&mut self, payload: &str) {
        self.0.update(&(payload.len() as u64).to_be_bytes());
        self.0.update(payload.as_bytes());
    }

    fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

fn yaml<T: Serialize>(value: &T) -> Result<String, SyncError> {
    serde_norway::to_string(value).map_err(|e| SyncError::Signing(e.to_string()))
}

/// Writes a request file to `out` as its parts come, hashing them.
pub struct RequestWriter<W: Write> {
    out: W,
    digest: Digest,
}

impl<W: Write> RequestWriter<W> {
    /// Starts the file with the request's head.
    pub fn begin(out: W, head: &RequestHead) -> Result<RequestWriter<W>, SyncError> {
        let mut writer = RequestWriter { out, digest: Digest::new() };
        writer.document(Some(KIND_SYNC_REQUEST), yaml(head)?)?;
        Ok(writer)
    }

    fn document(&mut self, kind: Option<&str>, payload: String) -> Result<(), SyncError> {
        self.digest.add(&payload);
        let doc = Document { kind: kind.map(str::to_string), payload: Some(payload), ..Document::default() };
        // The head, first, needs no mark: the file starts as every synchronisation file does.
        let mark = if kind.is_some() { "" } else { "---\n" };
        put(&mut self.out, mark, &yaml(&doc)?)
    }

    pub fn part(&mut self, part: &RequestPart) -> Result<(), SyncError> {
        self.document(None, yaml(part)?)
    }

    /// Seals the file with `key` and answers the output, flushed.
    pub fn finish(self, key: &SigningKey) -> Result<W, SyncError> {
        let RequestWriter { mut out, digest } = self;
        let signature = key.sign_b64(&digest.finish()).map_err(|e| SyncError::Signing(e.to_string()))?;
        let seal = Document { signature: Some(signature), end: Some(END.to_string()), ..Document::default() };
        put(&mut out, "---\n", &yaml(&seal)?)?;
        out.flush().map_err(SyncError::write)?;
        Ok(out)
    }
}

/// Writes a document, after the mark that starts it.
fn put(out: &mut impl Write, mark: &str, document: &str) -> Result<(), SyncError> {
    out.write_all(mark.as_bytes()).and_then(|()| out.write_all(document.as_bytes())).map_err(SyncError::write)
}

/// The documents of a YAML stream, one at a time: a line starting with `---` or `...` ends one.
struct Documents<R: BufRead> {
    input: R,
    /// The text after a `---` mark, which starts the next document.
    next: String,
    done: bool,
}

fn is_mark(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("...")) && line[3..].chars().next().is_none_or(char::is_whitespace)
}

impl<R: BufRead> Documents<R> {
    fn new(input: R) -> Documents<R> {
        Documents { input, next: String::new(), done: false }
    }

    /// The next document's text, or None at the end of the stream.
    fn text(&mut self) -> Result<Option<String>, SyncError> {
        let mut doc = std::mem::take(&mut self.next);
        while !self.done {
            let mut line = String::new();
            let read = self.input.read_line(&mut line).map_err(|e| SyncError::Truncated(e.to_string()))?;
            if read == 0 {
                self.done = true;
            } else if is_mark(&line) {
                self.next = line[3..].to_string();
                if !doc.trim().is_empty() {
                    return Ok(Some(doc));
                }
                doc = std::mem::take(&mut self.next);
            } else if doc.len() + line.len() > MAX_DOCUMENT {
                return Err(SyncError::Truncated(format!("a document is larger than {MAX_DOCUMENT} bytes")));
            } else {
                doc.push_str(&line);
            }
        }
        Ok(Some(doc).filter(|d| !d.trim().is_empty()))
    }

    fn next(&mut self) -> Result<Option<Document>, SyncError> {
        match self.text()? {
            Some(text) => serde_norway::from_str(&text).map(Some).map_err(|e| SyncError::Truncated(e.to_string())),
            None => Ok(None),
        }
    }

    /// The head's payload: the first document, of a request.
    fn head(&mut self) -> Result<String, SyncError> {
        let first = self.next()?.ok_or_else(|| SyncError::Truncated("the file is empty".into()))?;
        let kind = first.kind.unwrap_or_default();
        if kind != KIND_SYNC_REQUEST {
            return Err(SyncError::WrongKind { expected: KIND_SYNC_REQUEST, found: kind });
        }
        first.payload.ok_or_else(|| SyncError::Truncated("its first document has no payload".into()))
    }

    /// The next part's payload, or the seal's signature (Err) at the end of the file.
    fn part_or_seal(&mut self) -> Result<Result<String, String>, SyncError> {
        let cut = || SyncError::Truncated(format!("it does not end with '{END}'"));
        let doc = self.next()?.ok_or_else(cut)?;
        match doc {
            Document { kind: None, payload: Some(p), signature: None, end: None } => Ok(Ok(p)),
            Document { kind: None, payload: None, signature: Some(s), end: Some(end) } if end == END => {
                if self.next()?.is_some() {
                    return Err(SyncError::Truncated(format!("a document follows '{END}'")));
                }
                Ok(Err(s))
            }
            _ => Err(SyncError::Truncated("a document is neither a part nor the end of the file".into())),
        }
    }
}

fn head_of(payload: &str) -> Result<RequestHead, SyncError> {
    serde_norway::from_str(payload).map_err(|e| SyncError::Truncated(e.to_string()))
}

/// The head of a request file, not yet checked: the satellite it names, whose key must have
/// signed it. Reads the first document only.
pub fn request_head(input: impl BufRead) -> Result<RequestHead, SyncError> {
    head_of(&Documents::new(input).head()?)
}

/// A request file checked whole: its head, and the digest a second read must find again.
pub struct CheckedRequest {
    pub head: RequestHead,
    digest: Vec<u8>,
}

/// Checks a request file read from `input` (the first read): whole, a request, signed by
/// `key`. Holds one document at a time. A file whose signature matches the key it names but
/// not `key` is another satellite's (foreign), one matching neither was altered (tampered).
pub fn check_request(input: impl BufRead, key: &PublicKey) -> Result<CheckedRequest, SyncError> {
    let mut docs = Documents::new(input);
    let head = docs.head()?;
    let mut digest = Digest::new();
    digest.add(&head);
    let signature = loop {
        match docs.part_or_seal()? {
            Ok(part) => digest.add(&part),
            Err(signature) => break signature,
        }
    };
    let digest = digest.finish();
    if !key.verify_b64(&digest, &signature) {
        let named = head_of(&head).ok().and_then(|h| h.signed_by.public_key());
        return Err(match named.filter(|k| k.verify_b64(&digest, &signature)) {
            Some(k) => SyncError::Foreign { what: WHAT, signer: crate::satellite::manager_id(&k) },
            None => SyncError::Tampered(WHAT),
        });
    }
    Ok(CheckedRequest { head: head_of(&head)?, digest })
}

/// The parts of a checked request file, read again (the second read): each is hashed as it is
/// read, and a file that is no longer the one checked ends with an error (tampered) instead of
/// its end, so that whoever applies the parts keeps none of them.
pub struct RequestParts<R: BufRead> {
    docs: Documents<R>,
    digest: Option<Digest>,
    expected: Vec<u8>,
}

impl<R: BufRead> RequestParts<R> {
    pub fn new(input: R, checked: &CheckedRequest) -> RequestParts<R> {
        RequestParts { docs: Documents::new(input), digest: None, expected: checked.digest.clone() }
    }

    fn step(&mut self) -> Result<Option<RequestPart>, SyncError> {
        let digest = match &mut self.digest {
            Some(d) => d,
            None => {
                let head = self.docs.head()?;
                self.digest.insert(Digest::new()).add(&head);
                self.digest.as_mut().expect("just set")
            }
        };
        match self.docs.part_or_seal()? {
            Ok(payload) => {
                digest.add(&payload);
                serde_norway::from_str(&payload).map(Some).map_err(|e| SyncError::Truncated(e.to_string()))
            }
            Err(_) => {
                let read = self.digest.take().map(Digest::finish);
                if read.as_deref() != Some(&self.expected[..]) {
                    return Err(SyncError::Tampered(WHAT));
                }
                Ok(None)
            }
        }
    }
}

impl<R: BufRead> Iterator for RequestParts<R> {
    type Item = Result<RequestPart, SyncError>;

    /// After an error, the iteration ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.expected.is_empty() {
            return None;
        }
        let step = self.step();
        if !matches!(step, Ok(Some(_))) {
            self.expected.clear();
        }
        step.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    fn head(key: &SigningKey) -> RequestHead {
        RequestHead {
            satellite_id: 1,
            local_account: "Plant".into(),
            smart_account: "example.com".into(),
            sequence: 3,
            acknowledges: 2,
            full: true,
            interval_days: 30,
            created_at: 1_800_000_000_000,
            signed_by: SignedBy::of(key),
        }
    }

    fn part(n: usize) -> RequestPart {
        RequestPart {
            pool: "Lab".into(),
            instances: (0..n)
                .map(|i| ReportedInstance {
                    pid: "C9300".into(),
                    sn: format!("FCW{i}"),
                    hostname: format!("sw{i}\n--- not a mark"),
                    last_contact_at: 1_800_000_000_000,
                    usage: [("ACI Essentials".to_string(), 10)].into(),
                })
                .collect(),
            removed: vec![RemovedInstance { pid: "C9300".into(), sn: "FCW-gone".into() }],
        }
    }

    fn file(key: &SigningKey, parts: &[RequestPart]) -> String {
        let mut w = RequestWriter::begin(Vec::new(), &head(key)).unwrap();
        for p in parts {
            w.part(p).unwrap();
        }
        String::from_utf8(w.finish(key).unwrap()).unwrap()
    }

    fn read(text: &str, key: &PublicKey) -> Result<(RequestHead, Vec<RequestPart>), SyncError> {
        let checked = check_request(text.as_bytes(), key)?;
        let parts = RequestParts::new(text.as_bytes(), &checked).collect::<Result<Vec<_>, _>>()?;
        Ok((checked.head, parts))
    }

    /// A file reads back as written, a part at a time; cut, altered, reordered, of another kind
    /// or of another key, it is refused naming why.
    #[test]
    fn a_request_streams_and_every_bad_file_is_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let parts = [part(3), part(2)];
        let text = file(&key, &parts);
        assert!(text.starts_with("kind: smartlic-sync-request\npayload:"), "{text}");
        assert_eq!(request_head(text.as_bytes()).unwrap(), head(&key));
        assert_eq!(read(&text, &key.public_key()).unwrap(), (head(&key), parts.to_vec()));

        let refused = |t: &str, k: &PublicKey| read(t, k).unwrap_err();
        assert!(matches!(refused(&text[..text.len() - 10], &key.public_key()), SyncError::Truncated(_)));
        let cut_at_part = &text[..text.rfind("---\n").unwrap()];
        assert!(matches!(refused(cut_at_part, &key.public_key()), SyncError::Truncated(_)));
        assert!(matches!(refused(&text.replace("FCW1", "FCW9"), &key.public_key()), SyncError::Tampered(_)));
        let swapped = file(&key, &[part(2), part(3)]);
        let mixed = format!("{}{}", &text[..text.rfind("---\n").unwrap()], &swapped[swapped.rfind("---\n").unwrap()..]);
        assert!(matches!(refused(&mixed, &key.public_key()), SyncError::Tampered(_)));
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(refused(&text, &other.public_key()), SyncError::Foreign { .. }));
        let response = text.replace(KIND_SYNC_REQUEST, super::super::KIND_SYNC_RESPONSE);
        assert!(matches!(refused(&response, &key.public_key()), SyncError::WrongKind { .. }));
    }

    /// The second read of a file changed after the first ends with an error.
    #[test]
    fn a_file_changed_between_the_two_reads_is_refused() {
        let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let text = file(&key, &[part(2)]);
        let checked = check_request(text.as_bytes(), &key.public_key()).unwrap();
        let changed = text.replace("FCW1", "FCW7");
        let read: Vec<_> = RequestParts::new(changed.as_bytes(), &checked).collect();
        assert!(matches!(read.last(), Some(Err(SyncError::Tampered(_)))), "{read:?}");
    }
}
