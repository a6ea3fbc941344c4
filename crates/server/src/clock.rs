//! The simulated clock (`--clock simulated`) shared by the replicas over one database: its
//! offset from wall time is stored, so `admin clock set` on one replica moves the time of all.
//!
//! A replica applies the stored offset at start, before each request it serves over HTTPS
//! ([`follow_requests`]) and before each run of the jobs. Each setting has a version; a replica
//! applies only a newer one than it has, so a read made before a setting can never undo it.
//! In-process callers that drive the clock themselves (the simulator) use the router without
//! [`follow_requests`] and never store their settings.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use smartlic_core::{Clock, SimulatedClock, SystemClock, Timestamp};
use smartlic_store::{ClockOffset, Store};

/// The version of the stored offset this replica applied last (0: none yet).
#[derive(Default)]
pub struct Followed(std::sync::Mutex<i64>);

impl Followed {
    /// At start, before anything reads the clock: applies the stored offset, if any, to `sim`.
    pub async fn load(store: &dyn Store, sim: Option<&SimulatedClock>) -> smartlic_store::Result<Followed> {
        let Some(sim) = sim else { return Ok(Followed::default()) };
        let Some(stored) = store.clock_offset().await? else { return Ok(Followed::default()) };
        sim.set_offset_ms(stored.offset_ms);
        Ok(Followed(std::sync::Mutex::new(stored.version)))
    }
}

/// Applies `stored` unless this replica applied it, or a newer one, already.
fn apply(state: &AppState, stored: ClockOffset) {
    let Some(sim) = &state.simulated else { return };
    let mut applied = state.clock_followed.0.lock().unwrap_or_else(|e| e.into_inner());
    if stored.version > *applied {
        sim.set_offset_ms(stored.offset_ms);
        *applied = stored.version;
    }
}

/// Takes the offset any replica stored last (no-op with the system clock).
pub async fn follow(state: &AppState) -> smartlic_store::Result<()> {
    if state.simulated.is_some() {
        if let Some(stored) = state.store.clock_offset().await? {
            apply(state, stored);
        }
    }
    Ok(())
}

/// Moves the simulated clock of every replica to `to` (the caller checked it is simulated).
pub async fn set(state: &AppState, to: Timestamp) -> smartlic_store::Result<()> {
    let offset = to.0.saturating_sub(SystemClock.now().0);
    let stored = state.store.set_clock_offset(offset).await?;
    apply(state, stored);
    Ok(())
}

/// Layer of the HTTPS server with a simulated clock: each request sees the latest setting.
/// When the setting cannot be read (the database unreachable or closed), the request goes on
/// with the setting last applied: what it needs of the database fails on its own terms, and
/// `/health` and `/ready` still answer what they check.
pub async fn follow_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(e) = follow(&state).await {
        tracing::warn!(error = %e, "the simulated clock's setting could not be read; the last one applies");
    }
    next.run(request).await
}
