//! A synchronisation request's bytes on their way, never whole in memory: a full request of a
//! million instances is about 130 MB, more than the satellite's whole budget allows twice.
//!
//! The satellite writes the request to a temporary file and sends it from there, a chunk at a
//! time ([`send_file`]); the cloud receives it into a temporary file ([`receive`]) and reads it
//! twice from there ([`Spool`]): once to check its signature, once to apply it.

use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use bytes::Bytes;
use http_body::Frame;
use std::io::{BufRead, BufReader, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use tempfile::NamedTempFile;

/// How much of a file one chunk of a body carries.
const CHUNK: usize = 64 * 1024;

/// A request file held for its two reads: in a temporary file, or (a small JSON body's) in memory.
pub(crate) enum Spool {
    File(NamedTempFile),
    Text(Bytes),
}

impl Spool {
    pub(crate) fn text(text: String) -> Spool {
        Spool::Text(Bytes::from(text))
    }

    /// A reader from the start of the file.
    pub(crate) fn reader(&self) -> ApiResult<Box<dyn BufRead + Send>> {
        Ok(match self {
            Spool::File(file) => Box::new(BufReader::with_capacity(CHUNK, file.reopen().map_err(ApiError::internal)?)),
            Spool::Text(text) => Box::new(std::io::Cursor::new(text.clone())),
        })
    }
}

/// Reads a request's body into a temporary file, refusing one longer than `limit` bytes.
pub(crate) async fn receive(mut body: axum::body::Body, limit: usize) -> ApiResult<Spool> {
    use http_body::Body as _;
    let file = NamedTempFile::new().map_err(ApiError::internal)?;
    let mut out = tokio::fs::File::from_std(file.as_file().try_clone().map_err(ApiError::internal)?);
    let mut read = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::invalid("request", format!("the body was not received whole: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        read += data.len();
        if read > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "TOO_LARGE",
                format!("a synchronisation request is at most {limit} bytes"),
            ));
        }
        tokio::io::AsyncWriteExt::write_all(&mut out, &data).await.map_err(ApiError::internal)?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(ApiError::internal)?;
    Ok(Spool::File(file))
}

/// A body sent a chunk at a time, as a blocking thread reads them.
pub(crate) struct ChunkBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}

/// The file's text as a body between `prefix` and `suffix`, escaped as the inside of a JSON
/// string when `json`. The file is deleted once sent.
pub(crate) fn send_file(file: NamedTempFile, prefix: String, json: bool, suffix: &'static str) -> ChunkBody {
    let (chunks, body) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> std::io::Result<()> {
            let mut input = BufReader::with_capacity(CHUNK, file.reopen()?);
            let mut chunk = prefix.into_bytes();
            let mut line = Vec::new();
            loop {
                line.clear();
                if input.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                if json {
                    let text = std::str::from_utf8(&line).map_err(std::io::Error::other)?;
                    let quoted = serde_json::to_string(text).map_err(std::io::Error::other)?;
                    chunk.write_all(&quoted.as_bytes()[1..quoted.len() - 1])?;
                } else {
                    chunk.write_all(&line)?;
                }
                if chunk.len() >= CHUNK && chunks.blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk)))).is_err() {
                    return Ok(());
                }
            }
            chunk.extend_from_slice(suffix.as_bytes());
            let _ = chunks.blocking_send(Ok(Bytes::from(chunk)));
            Ok(())
        })();
        if let Err(e) = sent {
            let _ = chunks.blocking_send(Err(e));
        }
    });
    ChunkBody(body)
}
