//! What keeps the token endpoint from being a lever against the manager: Argon2 runs on a few
//! dedicated low-priority threads with a bounded queue (a flood of logins gets a quick "busy"
//! instead of taking the async workers, the cores and the memory), and failed logins are
//! budgeted per client ID and per source address on the manager's clock.

use smartlic_core::Timestamp;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The hashing queue is full: the caller should answer 503 and have the client retry.
#[derive(Debug)]
pub struct Busy;

/// Argon2 hashing and verification on dedicated threads; jobs in the pool are capped.
pub struct HashPool {
    jobs: SyncSender<Job>,
    /// Jobs queued or running, and their cap.
    taken: Arc<AtomicUsize>,
    places: usize,
}

/// A place in the pool, taken before any other work on a login (even the principal's lookup)
/// so that a flood is refused at once, at the cost of parsing its request.
pub struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// Half the cores (at least one thread), each with 16 waiting jobs at most: enough for
    /// real logins, which are rare (an access token lasts an hour).
    pub fn new() -> HashPool {
        return_freed_hash_memory();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashPool::with_threads((cores / 2).max(1), 16)
    }

    fn with_threads(threads: usize, waiting_per_thread: usize) -> HashPool {
        let places = threads * (1 + waiting_per_thread);
        let (jobs, queue) = sync_channel::<Job>(places);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            // Threads end when the pool (the only sender) is dropped.
            let spawned = std::thread::Builder::new().name(format!("smartlic-hash-{n}")).spawn(move || {
                lower_thread_priority();
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start a hashing thread: {e}");
            }
        }
        HashPool { jobs, taken: Arc::default(), places }
    }

    /// A place for one job; Busy at once when all are taken.
    pub fn place(&self) -> Result<Place, Busy> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.places).then_some(n + 1))
            .map(|_| Place(self.taken.clone()))
            .map_err(|_| Busy)
    }

    /// Runs `work` in `place`, which is given back when the work is done.
    fn submit<T: Send + 'static>(
        &self,
        place: Place,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<T>, Busy> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            drop(place);
            let _ = done.send(out);
        });
        self.jobs.try_send(job).map_err(|_| Busy)?;
        Ok(answer)
    }

    async fn run<T: Send + 'static>(&self, place: Place, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        self.submit(place, work)?.await.map_err(|_| Busy)
    }

    /// Whether `secret` matches `hash`, in a place of its own.
    pub async fn verify(&self, secret: String, hash: Option<String>) -> Result<bool, Busy> {
        self.verify_in(self.place()?, secret, hash).await
    }

    /// Whether `secret` matches `hash`, in a place taken earlier; with no hash, a dummy one is
    /// checked so that the time taken does not tell whether a name exists.
    pub async fn verify_in(&self, place: Place, secret: String, hash: Option<String>) -> Result<bool, Busy> {
        self.run(place, move || {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let dummy =
                DUMMY.get_or_init(|| crate::auth::hash_secret(&crate::auth::random_text(16)).unwrap_or_default());
            crate::auth::verify_secret(&secret, hash.as_deref().unwrap_or(dummy)) && hash.is_some()
        })
        .await
    }

    /// The Argon2 hash of `secret`.
    pub async fn hash(&self, secret: String) -> crate::error::ApiResult<String> {
        let place = self.place().map_err(|Busy| busy_error())?;
        self.run(place, move || crate::auth::hash_secret(&secret)).await.map_err(|Busy| busy_error())?
    }
}

impl Default for HashPool {
    fn default() -> Self {
        HashPool::new()
    }
}

/// 503 for a hashing queue that is full.
pub fn busy_error() -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "BUSY",
        "too many logins at once; retry in a second",
    )
}

/// Argon2 takes 19 MiB per hash. After freeing a block that large, glibc raises its mmap
/// threshold, and from then on each thread's arena keeps the memory of the hashes it did (the
/// server grew by hundreds of MiB under a login flood, never given back). Fixing the threshold
/// at its default (128 KiB) keeps such blocks mapped and returns them when freed.
fn return_freed_hash_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Device traffic goes first: hashing threads run at a lower priority (nice 10).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id; no memory is shared.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// The window of the failure budgets.
const WINDOW_MS: i64 = 60_000;
/// Keys kept per budget; beyond, only keys that still owe something are kept.
const MAX_KEYS: usize = 100_000;

/// A refusal: retry after this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

/// A budget that the last failure used up: worth an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// "client ID 'x'" or "address 192.0.2.1".
    pub what: String,
    pub retry_after: RetryAfter,
}

/// Failed-login budgets: `per_minute` failures per key in any minute, as a burst or spread.
/// Each key keeps one time (generic cell rate algorithm): when its budget is whole again.
struct Budget {
    per_minute: u32,
    full_at: HashMap<u64, i64>,
    /// No pruning before this time (ms), so a full table costs one pass a second.
    next_prune: i64,
}

impl Budget {
    fn new(per_minute: u32) -> Budget {
        Budget { per_minute, full_at: HashMap::new(), next_prune: 0 }
    }

    fn step(&self) -> i64 {
        WINDOW_MS / i64::from(self.per_minute.max(1))
    }

    /// When the key's budget is whole again, never beyond a window from now (a clock moved
    /// back does not lengthen a refusal).
    fn full_at(&self, key: u64, now: i64) -> i64 {
        self.full_at.get(&key).map_or(now, |&t| t.clamp(now, now + WINDOW_MS))
    }

    /// Milliseconds until one more failure fits, if none fits now.
    fn wait(&self, key: u64, now: i64) -> Option<i64> {
        if self.per_minute == 0 {
            return None;
        }
        let over = self.full_at(key, now) + self.step() - now - WINDOW_MS;
        (over > 0).then_some(over)
    }

    /// Counts a failure; the wait it leaves when it used up the budget.
    fn fail(&mut self, key: u64, now: i64) -> Option<i64> {
        if self.per_minute == 0 {
            return None;
        }
        let next = self.full_at(key, now) + self.step();
        if !self.full_at.contains_key(&key) && self.full_at.len() >= MAX_KEYS {
            if now < self.next_prune {
                return None;
            }
            self.full_at.retain(|_, t| *t > now);
            self.next_prune = now + 1000;
            if self.full_at.len() >= MAX_KEYS {
                return None;
            }
        }
        self.full_at.insert(key, next);
        self.wait(key, now)
    }
}

fn seconds(ms: i64) -> RetryAfter {
    RetryAfter((ms + 999) / 1000)
}

/// The failed-login budgets of the token endpoint.
pub struct LoginLimiter {
    keys: std::hash::RandomState,
    budgets: Mutex<(Budget, Budget)>,
}

impl LoginLimiter {
    pub fn new(per_client: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter {
            keys: std::hash::RandomState::new(),
            budgets: Mutex::new((Budget::new(per_client), Budget::new(per_address))),
        }
    }

    /// Client IDs are kept as keyed hashes (fixed size, whatever was sent); IPv6 addresses by
    /// their /64, which one host usually holds whole.
    fn keys(&self, client: &str, address: Option<IpAddr>) -> (u64, Option<u64>) {
        let address = address.map(|a| match a.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        });
        (self.keys.hash_one(("client", client)), address.map(|a| self.keys.hash_one(("address", a))))
    }

    /// Refuses an attempt when the client ID's or the address's budget is used up.
    pub fn check(&self, client: &str, address: Option<IpAddr>, now: Timestamp) -> Result<(), RetryAfter> {
        let (client, address) = self.keys(client, address);
        let budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let waits = [budgets.0.wait(client, now.0), address.and_then(|a| budgets.1.wait(a, now.0))];
        match waits.into_iter().flatten().max() {
            Some(ms) => Err(seconds(ms)),
            None => Ok(()),
        }
    }

    /// Counts a failed login; says which budgets it used up.
    pub fn failed(&self, client: &str, address: Option<IpAddr>, now: Timestamp) -> Vec<Exhausted> {
        let (client_key, address_key) = self.keys(client, address);
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let mut exhausted = Vec::new();
        if let Some(ms) = budgets.0.fail(client_key, now.0) {
            // Whatever length was sent, the event names it by its start.
            let name: String = client.chars().take(64).collect();
            exhausted.push(Exhausted { what: format!("client ID '{name}'"), retry_after: seconds(ms) });
        }
        if let (Some(key), Some(address)) = (address_key, address) {
            if let Some(ms) = budgets.1.fail(key, now.0) {
                exhausted.push(Exhausted { what: format!("address {address}"), retry_after: seconds(ms) });
            }
        }
        exhausted
    }

    /// A successful login clears the client ID's failures (not the address's).
    pub fn succeeded(&self, client: &str) {
        let (client, _) = self.keys(client, None);
        self.budgets.lock().unwrap_or_else(|e| e.into_inner()).0.full_at.remove(&client);
    }
}

/// Why a login was refused.
#[derive(Debug)]
pub enum Refused {
    /// The failure budget of the login or of the address is spent: retry after this.
    Throttled(RetryAfter),
    /// The hashing pool is full.
    Busy,
    /// An unknown login or a wrong secret (the same to the caller), counted in the budgets.
    Wrong,
    /// The store could not be read.
    Store(smartlic_store::StoreError),
}

/// The principal whose login and secret these are: the one sequence of every sign-in (token
/// endpoint, portal). The budgets are checked before any work, a hashing place is taken before
/// the lookup, an unknown login costs a dummy hash, a failure is counted (and recorded when it
/// spends a budget), a success clears the login's count. Whether the principal may sign in
/// (disabled, its kind) is the caller's to say, to whoever proved the secret.
pub async fn verify_login(
    state: &crate::state::AppState,
    login: &str,
    secret: String,
    address: Option<IpAddr>,
) -> Result<smartlic_store::Principal, Refused> {
    state.logins.check(login, address, state.clock.now()).map_err(Refused::Throttled)?;
    let place = state.hashing.place().map_err(|Busy| Refused::Busy)?;
    let principal = state.store.principal(login).await.map_err(Refused::Store)?;
    let hash = principal.as_ref().and_then(|p| p.secret_hash.clone());
    let ok = state.hashing.verify_in(place, secret, hash).await.map_err(|Busy| Refused::Busy)?;
    let Some(principal) = principal.filter(|_| ok) else {
        tracing::info!(login = %login, "login refused: wrong login or secret");
        record_failure(state, login, address).await;
        return Err(Refused::Wrong);
    };
    state.logins.succeeded(login);
    Ok(principal)
}

/// Counts a failed login; a budget it used up is logged and recorded as an event
/// (`login.throttled`), once per lockout.
pub async fn record_failure(state: &crate::state::AppState, client: &str, address: Option<IpAddr>) {
    let now = state.clock.now();
    for spent in state.logins.failed(client, address, now) {
        let RetryAfter(secs) = spent.retry_after;
        tracing::warn!(who = %spent.what, retry_after_secs = secs, "failed logins: budget spent, refusing with 429");
        let event = smartlic_store::NewEvent {
            at: now,
            actor: "system".into(),
            kind: "login.throttled".into(),
            account_id: None,
            virtual_account_id: None,
            object: spent.what.clone(),
            detail: format!("too many failed logins for {}; further attempts refused for {secs} s", spent.what),
        };
        if let Err(e) = state.store.record_event(event).await {
            tracing::error!("cannot record the login.throttled event: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp(1_800_000_000_000 + secs * 1000)
    }

    #[test]
    fn a_burst_uses_the_budget_and_time_gives_it_back() {
        let limiter = LoginLimiter::new(3, 0);
        let ip = Some("192.0.2.7".parse().unwrap());
        for n in 0..2 {
            assert_eq!(limiter.check("c", ip, at(0)), Ok(()));
            assert!(limiter.failed("c", ip, at(0)).is_empty(), "failure {n} leaves some budget");
        }
        let spent = limiter.failed("c", ip, at(0));
        assert_eq!(spent, [Exhausted { what: "client ID 'c'".into(), retry_after: RetryAfter(20) }]);
        assert_eq!(limiter.check("c", ip, at(0)), Err(RetryAfter(20)));
        assert_eq!(limiter.check("other", ip, at(0)), Ok(()), "another client ID has its own budget");
        assert_eq!(limiter.check("c", ip, at(19)), Err(RetryAfter(1)));
        assert_eq!(limiter.check("c", ip, at(20)), Ok(()), "one failure's worth came back");
        limiter.succeeded("c");
        assert!(limiter.failed("c", ip, at(20)).is_empty(), "a success starts the count again");
    }

    #[test]
    fn addresses_count_across_client_ids_and_ipv6_by_prefix() {
        let limiter = LoginLimiter::new(0, 2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(limiter.failed("x", Some(a), at(0)).is_empty());
        let spent = limiter.failed("y", Some(b), at(0));
        assert_eq!(spent.len(), 1);
        assert_eq!(spent[0].what, "address 2001:db8::ffff:2");
        assert_eq!(limiter.check("z", Some(a), at(0)), Err(RetryAfter(30)));
        assert_eq!(limiter.check("z", Some("2001:db9::1".parse().unwrap()), at(0)), Ok(()));
        assert_eq!(limiter.check("z", None, at(0)), Ok(()));
    }

    #[test]
    fn a_clock_moved_back_does_not_lengthen_a_refusal() {
        let limiter = LoginLimiter::new(1, 0);
        limiter.failed("c", None, at(1000));
        assert_eq!(limiter.check("c", None, at(0)), Err(RetryAfter(60)));
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_at_once_and_frees_places() {
        let pool = HashPool::with_threads(1, 1);
        let (started, running) = std::sync::mpsc::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let blocked = pool
            .submit(pool.place().unwrap(), move || {
                started.send(()).unwrap();
                gate.recv().is_ok()
            })
            .unwrap();
        running.recv().unwrap();
        let queued = pool.submit(pool.place().unwrap(), || true).unwrap();
        assert!(pool.place().is_err(), "the one thread is busy and the one waiting place taken");
        release.send(()).unwrap();
        assert!(blocked.await.unwrap() && queued.await.unwrap());
        assert!(pool.place().is_ok(), "places come back when their work is done");
    }
}
