//! The scenario file (TOML): what a simulated fleet is made of and what happens to it.
//!
//! Every field is checked before anything runs; an error names the field (`group[2].pool`) and
//! says what is wrong, so an operator can fix the file without reading code.

use anyhow::{bail, Context};
use serde::Deserialize;
use smartlic_core::{Catalog, Timestamp};
use std::path::Path;

/// The most days a scenario may span (ten years): the device clock stays within its bounds.
pub const MAX_DAYS: u32 = 3650;
/// The most devices of one scenario.
pub const MAX_DEVICES: u64 = 2_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Simulated days (1 ..= 3650).
    pub days: u32,
    /// Seed of the pseudo-random choices (registration times within a wave, retired devices).
    #[serde(default)]
    pub seed: u64,
    /// First simulated day, YYYY-MM-DD (2027-01-01 when absent).
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<Pool>,
    #[serde(default, rename = "group")]
    pub groups: Vec<Group>,
    #[serde(default, rename = "outage")]
    pub outages: Vec<Outage>,
    #[serde(default, rename = "retire")]
    pub retirements: Vec<Retirement>,
}

/// A virtual account of the simulated smart account, with the licenses bought for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    #[serde(default, rename = "purchase")]
    pub purchases: Vec<Purchase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purchase {
    pub tag: String,
    pub count: i64,
    /// `perpetual` (the default) or `term`.
    #[serde(default = "perpetual")]
    pub kind: String,
    /// The day the licenses start to count (0 when absent).
    #[serde(default)]
    pub start_day: u32,
    /// The day a term license ends (required for `term`, refused for `perpetual`).
    pub end_day: Option<u32>,
}

fn perpetual() -> String {
    "perpetual".into()
}

/// Devices alike: one product, the same features in use, registering in one wave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub pid: String,
    pub count: u32,
    pub pool: String,
    /// The day the wave registers.
    #[serde(default)]
    pub register_day: u32,
    /// The wave's registrations are spread over this many hours from the start of that day
    /// (pseudo-randomly, by the seed); 0: all at midnight.
    #[serde(default)]
    pub spread_hours: u32,
    #[serde(default, rename = "feature")]
    pub features: Vec<Feature>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub tag: String,
    pub count: u32,
}

/// The manager cannot be reached from `from_day` (its midnight) to `to_day` (its midnight).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub from_day: u32,
    pub to_day: u32,
}

/// `count` devices of `group` are taken out of service on `day` (they deregister first).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retirement {
    pub group: String,
    pub day: u32,
    pub count: u32,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Scenario::parse(&text).with_context(|| format!("in the scenario {}", path.display()))
    }

    /// Parses and checks a scenario against the built-in catalogue.
    pub fn parse(text: &str) -> anyhow::Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        scenario.check(&Catalog::builtin())?;
        Ok(scenario)
    }

    /// The first simulated instant (midnight UTC of `start`).
    pub fn start_time(&self) -> anyhow::Result<Timestamp> {
        let text = self.start.as_deref().unwrap_or("2027-01-01");
        match Timestamp::parse(text) {
            Some(t) if text.len() == 10 && t.0 >= 0 => Ok(t),
            _ => bail!("start: {text:?} is not a date YYYY-MM-DD from 1970 on"),
        }
    }

    /// Whether the manager is unreachable at `day_ms` after the start.
    pub fn in_outage(&self, since_start_ms: i64) -> bool {
        use smartlic_core::time::DAY_MS;
        self.outages
            .iter()
            .any(|o| (i64::from(o.from_day) * DAY_MS..i64::from(o.to_day) * DAY_MS).contains(&since_start_ms))
    }

    pub fn device_count(&self) -> u64 {
        self.groups.iter().map(|g| u64::from(g.count)).sum()
    }

    fn check(&self, catalog: &Catalog) -> anyhow::Result<()> {
        if !(1..=MAX_DAYS).contains(&self.days) {
            bail!("days: {} is not between 1 and {MAX_DAYS}", self.days);
        }
        self.start_time()?;
        if self.groups.is_empty() {
            bail!("group: the scenario has no device group ([[group]])");
        }
        if self.device_count() > MAX_DEVICES {
            bail!("group: {} devices in all, more than {MAX_DEVICES}", self.device_count());
        }
        let day = |field: String, d: u32| -> anyhow::Result<()> {
            if d > self.days {
                bail!("{field}: day {d} is after the last day of the scenario ({})", self.days);
            }
            Ok(())
        };
        let known = |field: String, tag: &str| -> anyhow::Result<()> {
            if !catalog.contains(tag) {
                bail!("{field}: {tag:?} is not an entitlement tag of the catalogue");
            }
            Ok(())
        };
        for (i, p) in self.pools.iter().enumerate() {
            name(&format!("pool[{i}].name"), &p.name)?;
            if self.pools[..i].iter().any(|q| q.name == p.name) {
                bail!("pool[{i}].name: the pool {:?} is defined twice", p.name);
            }
            for (j, b) in p.purchases.iter().enumerate() {
                let at = format!("pool[{i}].purchase[{j}]");
                known(format!("{at}.tag"), &b.tag)?;
                if !(1..=1_000_000).contains(&b.count) {
                    bail!("{at}.count: {} is not between 1 and 1000000", b.count);
                }
                day(format!("{at}.start_day"), b.start_day)?;
                match (b.kind.as_str(), b.end_day) {
                    ("perpetual", None) => {}
                    ("perpetual", Some(_)) => bail!("{at}.end_day: a perpetual license has no end day"),
                    ("term", None) => bail!("{at}.end_day: a term license needs an end day"),
                    ("term", Some(end)) if end <= b.start_day => {
                        bail!("{at}.end_day: day {end} is not after start_day {}", b.start_day)
                    }
                    ("term", Some(_)) => {}
                    (other, _) => bail!("{at}.kind: {other:?} is neither \"perpetual\" nor \"term\""),
                }
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            let at = format!("group[{i}]");
            name(&format!("{at}.name"), &g.name)?;
            if self.groups[..i].iter().any(|h| h.name == g.name) {
                bail!("{at}.name: the group {:?} is defined twice", g.name);
            }
            name(&format!("{at}.pid"), &g.pid)?;
            if g.count == 0 {
                bail!("{at}.count: a group has at least one device");
            }
            if !self.pools.iter().any(|p| p.name == g.pool) {
                bail!("{at}.pool: no [[pool]] is named {:?}", g.pool);
            }
            if g.register_day >= self.days {
                bail!(
                    "{at}.register_day: day {} is not before the end of the scenario ({})",
                    g.register_day,
                    self.days
                );
            }
            if g.spread_hours > 24 * 30 {
                bail!("{at}.spread_hours: {} is more than 30 days", g.spread_hours);
            }
            for (j, f) in g.features.iter().enumerate() {
                known(format!("{at}.feature[{j}].tag"), &f.tag)?;
                if !(1..=1_000_000).contains(&f.count) {
                    bail!("{at}.feature[{j}].count: {} is not between 1 and 1000000", f.count);
                }
            }
        }
        for (i, o) in self.outages.iter().enumerate() {
            day(format!("outage[{i}].from_day"), o.from_day)?;
            day(format!("outage[{i}].to_day"), o.to_day)?;
            if o.to_day <= o.from_day {
                bail!("outage[{i}].to_day: day {} is not after from_day {}", o.to_day, o.from_day);
            }
        }
        for (i, r) in self.retirements.iter().enumerate() {
            let at = format!("retire[{i}]");
            let Some(g) = self.groups.iter().find(|g| g.name == r.group) else {
                bail!("{at}.group: no [[group]] is named {:?}", r.group);
            };
            if r.day >= self.days {
                bail!("{at}.day: day {} is not before the end of the scenario ({})", r.day, self.days);
            }
            let retired: u64 = self.retirements.iter().filter(|s| s.group == r.group).map(|s| u64::from(s.count)).sum();
            if retired > u64::from(g.count) {
                bail!("{at}.count: {retired} devices of {:?} retired in all, but it has {}", g.name, g.count);
            }
        }
        Ok(())
    }
}

/// Names become serial numbers and virtual-account names: short, printable, no spaces.
fn name(field: &str, value: &str) -> anyhow::Result<()> {
    let ok = (1..=40).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        bail!("{field}: {value:?} must be 1 to 40 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}
