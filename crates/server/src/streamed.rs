//! Reports over every instance of an account (`/api/v1/accounts/{domain}/reports/instances`,
//! the portal's `instances.csv`), sent as they are read. A task reads the instances a page at a
//! time (keyset pages, `Store::instances_page`, then the page's usage in one query) and hands
//! each page's bytes to the connection through a channel of [`PAGES_IN_FLIGHT`]: the manager
//! holds a few pages whatever the account's size (a million instances are most of a gigabyte
//! of JSON), and a slow reader slows the task instead of filling memory.

use crate::api::instance_views;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::views::InstanceView;
use axum::body::Bytes;
use hyper::body::Frame;
use smartlic_store::{Account, InstanceKey, VirtualAccount};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Instances a page of a report reads.
const REPORT_PAGE: i64 = 5000;
/// Pages rendered ahead of the connection.
const PAGES_IN_FLIGHT: usize = 2;

/// The pools of `account` whose instances `caller` may see in a report of the whole account.
pub(crate) async fn visible_pools(
    state: &AppState,
    caller: &Caller,
    account: &Account,
) -> ApiResult<Vec<VirtualAccount>> {
    caller.require_account_view(account)?;
    let mut pools = state.store.virtual_accounts(account.id).await?;
    pools.retain(|v| caller.sees(account, v.id));
    Ok(pools)
}

/// A body of `head`, then each page of the instances of `pools` in listing order as `render`
/// writes it (told whether an instance came before: a JSON list needs its commas), then `tail`.
pub(crate) fn instance_report<F>(
    state: AppState,
    pools: Vec<VirtualAccount>,
    head: String,
    render: F,
    tail: &'static str,
) -> axum::body::Body
where
    F: Fn(&[InstanceView], bool) -> String + Send + 'static,
{
    let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
    tokio::spawn(async move {
        if let Err(e) = send_pages(&state, &pools, head, render, tail, &tx).await {
            // The status line is sent already: the answer is cut short, never ended as if whole.
            tracing::error!(code = e.code, message = %e.message, "instance report stopped");
            let _ = tx.send(Err(std::io::Error::other("the report stopped; see the server log"))).await;
        }
    });
    axum::body::Body::new(Chunks(rx))
}

/// Reads and sends the pages; a reader gone (the channel closed) ends it quietly.
async fn send_pages<F>(
    state: &AppState,
    pools: &[VirtualAccount],
    head: String,
    render: F,
    tail: &'static str,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> ApiResult<()>
where
    F: Fn(&[InstanceView], bool) -> String,
{
    let send = |chunk: String| async move { tx.send(Ok(Bytes::from(chunk))).await.is_ok() };
    if !send(head).await {
        return Ok(());
    }
    let ids: Vec<i64> = pools.iter().map(|v| v.id).collect();
    let (mut after, mut sent) = (None, false);
    loop {
        let page = state.store.instances_page(ids.clone(), after.take(), REPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(InstanceKey::of(last));
        let views = instance_views(state, &page, pools).await?;
        if !send(render(&views, sent)).await {
            return Ok(());
        }
        sent = true;
    }
    send(tail.to_string()).await;
    Ok(())
}

/// A page's items of a JSON list, each as `item` writes it, with the commas between them
/// (`after_one`: an item of an earlier page came before).
pub(crate) fn json_items(views: &[InstanceView], after_one: bool, item: impl Fn(&InstanceView) -> String) -> String {
    let mut out = String::new();
    for (n, v) in views.iter().enumerate() {
        if after_one || n > 0 {
            out.push(',');
        }
        out.push_str(&item(v));
    }
    out
}

/// The body the channel's chunks make.
struct Chunks(mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}
