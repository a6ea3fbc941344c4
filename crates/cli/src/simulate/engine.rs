//! The discrete-event simulation: each device's real agent state machine against the real
//! manager, on one simulated clock.
//!
//! The queue holds each device's next wake-up ([`next_wakeup`] says when), plus the scenario's
//! own events (a device booting and registering, a device retired). Events are processed in
//! time order (ties by kind, then device number), so a run depends only on the scenario and the
//! seed. Every `Send*` action the machine asks for is one signed exchange with the manager (or
//! a communication failure during an outage), whose outcome is stepped into the machine at the
//! same instant. At the end of each day the manager's jobs run and the day is counted.
//!
//! Events due within [`BATCH_MS`] of each other whose answers cannot depend on the order in
//! which the manager serves them run concurrently (in tasks, on both cores, so the manager's
//! group commit takes many at once) and are merged in device order, which keeps the result the
//! same for a seed: renewals by devices the manager already counts, and boots while their
//! group's token and their pool's licenses suffice for the whole batch (see [`Engine::joins`]).
//! Retirements and anything else that changes what the manager counts run one at a time, in
//! order, with the manager's clock at their own instant.

use super::device::{Device, Link, Tally};
use super::manager::{Manager, DOMAIN};
use super::report::{DayRow, AUTHORIZATION, FAILURES, REGISTRATION, REQUESTS};
use super::scenario::Scenario;
use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use smartlic_core::agent::{next_wakeup, step, Action, Agent, Authorization, Event, Registration};
use smartlic_core::time::{HOUR_MS, MINUTE_MS, SECOND_MS};
use smartlic_core::{Catalog, Timestamp};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Events due within this long of each other may be sent together, the manager's clock halfway
/// between the batch's first and last: each device's clock is then at most 7.5 minutes from the
/// manager's, within the 10 minutes of clock difference the manager tolerates with room for the
/// real time a batch takes (the simulated clock keeps flowing). Wider batches keep both cores
/// busy: 10,000 devices send about one request every 3.5 simulated minutes.
pub const BATCH_MS: i64 = 15 * MINUTE_MS;

/// What happens to a device at an instant; the order breaks ties at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    /// It is installed, configured with its group's features and told to register.
    Boot,
    /// It is taken out of service: deregistered, then never heard of again.
    Retire,
    /// Its agent's next timer.
    Wake,
}

pub struct Engine<'a> {
    scenario: &'a Scenario,
    manager: Arc<Manager>,
    start: Timestamp,
    devices: Vec<Device>,
    queue: BinaryHeap<Reverse<(Timestamp, Happening, u32)>>,
    /// Each group's registration token, made on its registration day.
    tokens: Vec<Option<String>>,
    /// The pools' virtual-account IDs and the tags counted for each.
    pools: Vec<(String, i64, Vec<String>)>,
    account_id: i64,
    catalog: Catalog,
    today: DayRow,
    /// Registrations each group's devices have sent (each may have used its token).
    registrations: Vec<u64>,
}

/// What the boots gathered into a batch so far will take: registrations per group, licenses
/// per pool and tag (the pool's balance when first needed, less the boots' usage).
#[derive(Default)]
struct Room {
    registrations: HashMap<usize, u64>,
    licenses: HashMap<(i64, String), i64>,
    fetched: Vec<i64>,
}

impl<'a> Engine<'a> {
    /// Starts the manager, sets up the account, pools and purchases, and plans the scenario's
    /// boots and retirements with the seeded generator.
    pub async fn new(scenario: &'a Scenario, seed: u64) -> anyhow::Result<Engine<'a>> {
        let start = scenario.start_time()?;
        let manager = Manager::start().await?;
        manager.set_clock(start);
        let op = manager.operator().await?;
        op.post("/api/v1/accounts", json!({"domain": DOMAIN, "name": "Simulated fleet"})).await?;
        let vas = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts");
        for pool in scenario.pools.iter().filter(|p| p.name != "Default") {
            op.post(&vas, json!({"name": pool.name}))
                .await
                .with_context(|| format!("creating the pool {}", pool.name))?;
        }
        for pool in &scenario.pools {
            for b in &pool.purchases {
                let date = |day: u32| start.plus_days(i64::from(day)).to_rfc3339();
                let mut body = json!({"tag": b.tag, "count": b.count, "type": b.kind, "start": date(b.start_day)});
                if let Some(end) = b.end_day {
                    body["end"] = json!(date(end));
                }
                op.post(&format!("{vas}/{}/licenses", pool.name), body)
                    .await
                    .with_context(|| format!("buying {} {:?} for the pool {}", b.count, b.tag, pool.name))?;
            }
        }
        let store = &manager.state().store;
        let account = store.account(DOMAIN).await?.context("the simulated account is missing")?;
        let mut pools = Vec::new();
        for pool in &scenario.pools {
            let va = store.virtual_account(account.id, &pool.name).await?.context("a simulated pool is missing")?;
            let mut tags: Vec<String> = pool.purchases.iter().map(|b| b.tag.clone()).collect();
            for g in scenario.groups.iter().filter(|g| g.pool == pool.name) {
                tags.extend(g.features.iter().map(|f| f.tag.clone()));
            }
            tags.sort();
            tags.dedup();
            pools.push((pool.name.clone(), va.id, tags));
        }
        let mut engine = Engine {
            scenario,
            manager: Arc::new(manager),
            start,
            devices: Vec::with_capacity(scenario.device_count() as usize),
            queue: BinaryHeap::new(),
            tokens: vec![None; scenario.groups.len()],
            pools,
            account_id: account.id,
            catalog: Catalog::builtin(),
            today: DayRow::default(),
            registrations: vec![0; scenario.groups.len()],
        };
        engine.plan(seed);
        Ok(engine)
    }

    /// Boot times within each wave and the devices retired, from the seed.
    fn plan(&mut self, seed: u64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for (g, group) in self.scenario.groups.iter().enumerate() {
            let first = self.devices.len();
            let day = self.start.plus_days(i64::from(group.register_day));
            for _ in 0..group.count {
                let offset = match group.spread_hours {
                    0 => 0,
                    h => rng.gen_range(0..i64::from(h) * HOUR_MS / SECOND_MS) * SECOND_MS,
                };
                let n = self.devices.len() as u32;
                self.queue.push(Reverse((day.plus_ms(offset), Happening::Boot, n)));
                self.devices.push(Device { group: g, ..Device::default() });
            }
            let mut order: Vec<u32> = (first as u32..self.devices.len() as u32).collect();
            order.shuffle(&mut rng);
            let mut order = order.into_iter();
            for r in self.scenario.retirements.iter().filter(|r| r.group == group.name) {
                let at = self.start.plus_days(i64::from(r.day));
                for n in order.by_ref().take(r.count as usize) {
                    self.queue.push(Reverse((at, Happening::Retire, n)));
                }
            }
        }
    }

    /// Runs every day; answers the rows, or the first violation.
    pub async fn run(mut self, mut progress: impl FnMut(u32)) -> anyhow::Result<Vec<DayRow>> {
        let mut rows = Vec::with_capacity(self.scenario.days as usize);
        for day in 0..self.scenario.days {
            let begins = self.start.plus_days(i64::from(day));
            let ends = begins.plus_days(1);
            self.today = DayRow { day, date: begins.to_rfc3339()[..10].to_string(), ..DayRow::default() };
            self.make_tokens(day, begins).await?;
            self.process_until(ends, day).await?;
            // The day is counted at its last instant: a term ending at midnight counts on its day.
            let last = ends.plus_ms(-1);
            self.manager.run_jobs(last).await?;
            self.count(last).await?;
            rows.push(std::mem::take(&mut self.today));
            progress(day);
        }
        let end = self.start.plus_days(i64::from(self.scenario.days));
        let drift = self.manager.state().store.check_counters(end).await?;
        if let Some(d) = drift.first() {
            bail!(
                "on day {} the manager's {} counter of {:?} in {}/{} is {}, but its instances add up to {}",
                self.scenario.days,
                d.counter,
                d.tag,
                d.account,
                d.virtual_account,
                d.stored,
                d.recomputed
            );
        }
        if let Ok(manager) = Arc::try_unwrap(self.manager) {
            manager.stop().await;
        }
        Ok(rows)
    }

    /// A violation of the requirements stops the run, naming the device and the day.
    fn violation(&self, n: usize, day: u32, message: String) -> anyhow::Error {
        let group = &self.scenario.groups[self.devices[n].group].name;
        anyhow::anyhow!("device {} of group {group} on day {day} ({}): {message}", serial(n), self.today.date)
    }

    /// The registration tokens of the groups whose wave starts today.
    async fn make_tokens(&mut self, day: u32, now: Timestamp) -> anyhow::Result<()> {
        let waves: Vec<usize> =
            (0..self.scenario.groups.len()).filter(|&g| self.scenario.groups[g].register_day == day).collect();
        if waves.is_empty() {
            return Ok(());
        }
        self.manager.set_clock(now);
        let op = self.manager.operator().await?;
        for g in waves {
            let group = &self.scenario.groups[g];
            self.tokens[g] = Some(op.token(&group.pool, group.count).await?);
        }
        Ok(())
    }

    /// Processes the events before `until` in time order. Events within [`BATCH_MS`] of the
    /// first one that cannot change any other answer (see [`Engine::joins`]) run together;
    /// anything else runs alone, in order.
    async fn process_until(&mut self, until: Timestamp, day: u32) -> anyhow::Result<()> {
        while let Some(&Reverse((first, _, _))) = self.queue.peek() {
            if first >= until {
                break;
            }
            let window = first.plus_ms(BATCH_MS).min(until);
            let mut batch = Vec::new();
            let mut room = Room::default();
            while let Some(&Reverse((at, what, n))) = self.queue.peek() {
                if at >= window || !self.joins(at, what, n as usize, first, &mut room).await? {
                    break;
                }
                self.queue.pop();
                batch.push((at, what, n as usize));
            }
            if batch.is_empty() {
                // Alone: its answer may depend on what was served before it.
                let Some(Reverse((at, what, n))) = self.queue.pop() else { break };
                self.manager.set_clock(at);
                self.happen(at, what, n as usize).await.map_err(|m| self.violation(n as usize, day, m))?;
                continue;
            }
            // Never before an event already served: the next one is due at or after the last.
            let last = batch.last().map_or(first, |&(at, _, _)| at);
            let clock = first.plus_ms((last.0 - first.0) / 2);
            self.together(batch, clock).await.map_err(|(n, m)| self.violation(n, day, m))?;
        }
        Ok(())
    }

    /// Whether device `n`'s event at `at` may run in the batch that began at `first`: its
    /// answers must not depend on the order in which the batch is served. A device that only
    /// renews changes nothing the manager counts (a superseded wake-up does nothing at all); a
    /// boot registers and then reports its group's usage, which is order-free while the
    /// group's token cannot run out and the pool has licenses left for every boot in the
    /// batch (then each is authorized, whoever comes first). Retirements run alone.
    async fn joins(
        &self,
        at: Timestamp,
        what: Happening,
        n: usize,
        first: Timestamp,
        room: &mut Room,
    ) -> anyhow::Result<bool> {
        let device = &self.devices[n];
        match what {
            Happening::Retire => Ok(false),
            Happening::Wake => Ok(device.wake != Some(at) || device.only_renews(at)),
            Happening::Boot if device.retired => Ok(true),
            Happening::Boot => self.boot_joins(device.group, first, room).await,
        }
    }

    /// Whether one more boot of group `g` fits the batch's token uses and licenses; if so, counts
    /// it in `room`.
    async fn boot_joins(&self, g: usize, first: Timestamp, room: &mut Room) -> anyhow::Result<bool> {
        let group = &self.scenario.groups[g];
        // Every registration sent counts, whether or not it used the token: an upper bound.
        let sent = *room.registrations.entry(g).or_insert(self.registrations[g]);
        if sent >= u64::from(group.count) {
            return Ok(false);
        }
        let Some((_, va, _)) = self.pools.iter().find(|(name, _, _)| *name == group.pool) else {
            return Ok(false);
        };
        let va = *va;
        if !room.fetched.contains(&va) {
            let ledger = self.manager.state().store.pool_counts(va, first).await?.ledger(&self.catalog);
            for t in &ledger.tags {
                room.licenses.insert((va, t.tag.clone()), t.balance());
            }
            room.fetched.push(va);
        }
        let mut needs: Vec<(&str, i64)> = Vec::new();
        for f in &group.features {
            match needs.iter_mut().find(|(tag, _)| *tag == f.tag) {
                Some((_, count)) => *count += i64::from(f.count),
                None => needs.push((&f.tag, i64::from(f.count))),
            }
        }
        let left = |tag: &str| room.licenses.get(&(va, tag.to_string())).copied().unwrap_or(0);
        if needs.iter().any(|&(tag, count)| left(tag) < count) {
            return Ok(false);
        }
        for (tag, count) in needs {
            *room.licenses.entry((va, tag.to_string())).or_insert(0) -= count;
        }
        room.registrations.insert(g, sent + 1);
        Ok(true)
    }

    /// A batch's events, run at once (in tasks, on both cores) with the manager's clock at
    /// `clock`; merged in device order.
    async fn together(
        &mut self,
        batch: Vec<(Timestamp, Happening, usize)>,
        clock: Timestamp,
    ) -> Result<(), (usize, String)> {
        self.manager.set_clock(clock);
        let mut started = Vec::with_capacity(batch.len());
        for (at, what, n) in batch {
            if let Some(actions) = self.begin(at, what, n).map_err(|m| (n, m))? {
                started.push((at, n, actions));
            }
        }
        let mut running = tokio::task::JoinSet::new();
        for (at, n, actions) in started {
            let mut device = std::mem::take(&mut self.devices[n]);
            let manager = self.manager.clone();
            let outage = self.scenario.in_outage(at.0 - self.start.0);
            running.spawn(async move {
                let mut tally = Tally::default();
                device.perform(Link { manager: &manager, outage }, &mut tally, actions, at).await;
                (at, n, device, tally)
            });
        }
        let mut done = Vec::with_capacity(running.len());
        while let Some(joined) = running.join_next().await {
            done.push(joined.map_err(|e| (0, format!("a device task failed: {e}")))?);
        }
        // Merged in device order, so the first violation reported does not depend on timing.
        done.sort_by_key(|(_, n, _, _)| *n);
        let mut first_violation = None;
        for (at, n, device, tally) in done {
            self.devices[n] = device;
            let found = self.merge(n, tally).or_else(|| self.settle(at, n).err());
            if let Some(message) = found {
                first_violation.get_or_insert((n, message));
            }
        }
        first_violation.map_or(Ok(()), Err)
    }

    /// Adds device `n`'s counts to the day; answers its violation, if any.
    fn merge(&mut self, n: usize, tally: Tally) -> Option<String> {
        for (sum, add) in self.today.requests.iter_mut().zip(tally.requests) {
            *sum += add;
        }
        for (sum, add) in self.today.failures.iter_mut().zip(tally.failures) {
            *sum += add;
        }
        self.registrations[self.devices[n].group] += tally.requests[0];
        tally.violation
    }

    /// The first step of device `n`'s event at `at`: the actions its agent asks for, or none
    /// when there is nothing to do (retired, or a wake-up superseded by a later one).
    fn begin(&mut self, at: Timestamp, what: Happening, n: usize) -> Result<Option<Vec<Action>>, String> {
        let device = &mut self.devices[n];
        if device.retired {
            return Ok(None);
        }
        let actions = match what {
            Happening::Wake if device.wake != Some(at) => return Ok(None),
            Happening::Wake => step(device.agent.as_mut().ok_or("woken before it booted")?, Event::Tick, at),
            Happening::Boot => {
                let group = &self.scenario.groups[device.group];
                let mut agent = Agent::new(group.pid.clone(), serial(n), at);
                let usage = group.features.iter().map(|f| (f.tag.clone(), f.count)).collect();
                step(&mut agent, Event::ReplaceUsage(usage), at);
                let token = self.tokens[device.group].clone().ok_or("its group has no registration token")?;
                device.timeline.registration_started();
                let actions = step(&mut agent, Event::Register { token, force: false }, at);
                device.agent = Some(agent);
                actions
            }
            Happening::Retire => match device.agent.as_mut() {
                Some(agent) => step(agent, Event::Deregister, at),
                None => Vec::new(),
            },
        };
        Ok(Some(actions))
    }

    /// A boot, retirement or wake-up of device `n` at `at`, on its own.
    async fn happen(&mut self, at: Timestamp, what: Happening, n: usize) -> Result<(), String> {
        let Some(actions) = self.begin(at, what, n)? else { return Ok(()) };
        let link = Link { manager: &self.manager, outage: self.scenario.in_outage(at.0 - self.start.0) };
        let mut tally = Tally::default();
        self.devices[n].perform(link, &mut tally, actions, at).await;
        if let Some(message) = self.merge(n, tally) {
            return Err(message);
        }
        if what == Happening::Retire {
            // Also a device retired before its wave: it never boots.
            let device = &mut self.devices[n];
            device.retired = true;
            device.wake = None;
            device.agent = None;
            return Ok(());
        }
        self.settle(at, n)
    }

    /// After device `n`'s step at `at`: checks its authorization status and queues its next
    /// wake-up.
    fn settle(&mut self, at: Timestamp, n: usize) -> Result<(), String> {
        let device = &mut self.devices[n];
        let Some(agent) = device.agent.as_mut() else { return Ok(()) };
        // The event log is the device's display only; the simulation keeps the state small
        // (its buffer too: a million devices each keeping one would cost hundreds of MB).
        agent.event_log = Default::default();
        device.timeline.status(agent, at)?;
        device.wake = next_wakeup(agent);
        if let Some(next) = device.wake {
            if next <= at {
                return Err(format!("the agent's next wake-up {} is not after now", next.to_rfc3339()));
            }
            self.queue.push(Reverse((next, Happening::Wake, n as u32)));
        }
        Ok(())
    }

    /// Counts the devices by state, the pools' balances and the open alerts at `now`.
    async fn count(&mut self, now: Timestamp) -> anyhow::Result<()> {
        for d in &self.devices {
            let (r, a) = states(d);
            self.today.registration[r] += 1;
            if let Some(a) = a {
                self.today.authorization[a] += 1;
            }
        }
        let store = &self.manager.state().store;
        for (pool, va, tags) in &self.pools {
            let ledger = store.pool_counts(*va, now).await?.ledger(&self.catalog);
            for tag in tags {
                let t = ledger.tags.iter().find(|t| &t.tag == tag);
                let row = t.map_or((0, 0, 0), |t| (t.purchased, t.in_use, t.balance()));
                self.today.pools.insert((pool.clone(), tag.clone()), row);
            }
        }
        self.today.alerts = store.alerts(self.account_id).await?.len() as u64;
        Ok(())
    }
}

/// A device's registration and authorization columns (none for devices not in service).
fn states(d: &Device) -> (usize, Option<usize>) {
    let Some(agent) = d.agent.as_ref().filter(|_| !d.retired) else {
        return (if d.retired { 6 } else { 0 }, None);
    };
    let r = match &agent.registration {
        Registration::Unidentified | Registration::Reserved(_) => 1,
        Registration::Registering(_) => 2,
        Registration::Failed(_) => 3,
        Registration::Registered(_) => 4,
        Registration::Expired { .. } => 5,
    };
    let a = match &agent.authorization {
        Authorization::Evaluation => 0,
        Authorization::EvaluationExpired { .. } => 1,
        Authorization::Authorized { .. } | Authorization::Reserved { .. } => 2,
        Authorization::OutOfCompliance { .. } => 3,
        Authorization::AuthorizationExpired { .. } => 4,
        Authorization::NoLicensesInUse { .. } => 5,
    };
    (r, Some(a))
}

// The column tables and the indexes above go together.
const _: () =
    assert!(REGISTRATION.len() == 7 && AUTHORIZATION.len() == 6 && REQUESTS.len() == 4 && FAILURES.len() == 3);

/// The serial number of device `n`: unique within the simulation.
pub fn serial(n: usize) -> String {
    format!("SIM{n:08}")
}
