//! The product catalogue: which entitlement tags exist, their display names, and which tags
//! fulfil which (C-6). Hierarchies are data, loaded from TOML, never code.
//!
//! The catalogue also maps legacy products to smart entitlements (V-1, V-2): one `[[legacy]]`
//! table serves both the license names a device reports in device-led conversion and the SKUs of
//! PAKs, since both are "a name the old world used" that becomes a quantity of one tag:
//!
//! ```toml
//! [[legacy]]
//! name = "ACI-LEAF-ADV"     # a device-reported legacy license name, or a PAK SKU
//! tag = "ACI Advantage"     # the entitlement tag it becomes; must be defined by the catalogue
//! quantity = 1              # licenses of `tag` per legacy unit (default 1)
//! ```
//!
//! A name the table does not list is never guessed: [`Catalog::legacy`] answers `None` and the
//! caller reports it back.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

const BUILTIN: &str = include_str!("../catalog/builtin.toml");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalogue is not valid TOML: {0}")]
    Syntax(String),
    #[error("catalogue: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    family: Vec<FamilyEntry>,
    #[serde(default)]
    tag: Vec<TagEntry>,
    #[serde(default)]
    legacy: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyEntry {
    name: String,
    tag: String,
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

/// What one unit of a legacy product (device-reported license name or PAK SKU) converts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMapping {
    /// The legacy name or SKU, as written in the catalogue.
    pub name: String,
    /// The smart entitlement tag it becomes.
    pub tag: String,
    /// Licenses of `tag` per legacy unit, at least 1.
    pub quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyEntry {
    name: String,
    tiers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagEntry {
    name: String,
    display_name: Option<String>,
    #[serde(default)]
    fulfilled_by: Vec<String>,
}

/// One entitlement tag of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub name: String,
    pub display_name: String,
    pub family: Option<String>,
    /// Tags that may stand in for this one, in the order they are tried.
    pub fulfilled_by: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    tags: Vec<TagInfo>,
    index: HashMap<String, usize>,
    legacy: HashMap<String, LegacyMapping>,
}

impl Catalog {
    /// The catalogue compiled into smartlic (seeds 000, 002 and 004).
    pub fn builtin() -> Catalog {
        Catalog::from_toml(BUILTIN).expect("the built-in catalogue is valid")
    }

    /// The built-in catalogue source, for operators who want a starting point.
    pub fn builtin_source() -> &'static str {
        BUILTIN
    }

    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        let mut catalog = Catalog { tags: Vec::new(), index: HashMap::new(), legacy: HashMap::new() };
        for family in &file.family {
            if family.tiers.is_empty() {
                return Err(CatalogError::Invalid(format!("family '{}' has no tiers", family.name)));
            }
            for (i, tier) in family.tiers.iter().enumerate() {
                let at = catalog.entry(tier);
                let tag = &mut catalog.tags[at];
                if let Some(other) = &tag.family {
                    return Err(CatalogError::Invalid(format!(
                        "tag '{tier}' is in two families: '{other}' and '{}'",
                        family.name
                    )));
                }
                tag.family = Some(family.name.clone());
                tag.fulfilled_by.extend(family.tiers[i + 1..].iter().cloned());
            }
        }
        for entry in &file.tag {
            let at = catalog.entry(&entry.name);
            let tag = &mut catalog.tags[at];
            if let Some(display) = &entry.display_name {
                tag.display_name = display.clone();
            }
            for f in &entry.fulfilled_by {
                if !tag.fulfilled_by.contains(f) {
                    tag.fulfilled_by.push(f.clone());
                }
            }
        }
        catalog.check()?;
        for entry in file.legacy {
            catalog.add_legacy(entry)?;
        }
        Ok(catalog)
    }

    /// A legacy entry must name a defined tag, a sane quantity, and a name used once.
    fn add_legacy(&mut self, entry: LegacyEntry) -> Result<(), CatalogError> {
        let name = crate::validate::text("legacy name", &entry.name, crate::validate::MAX_NAME)
            .map_err(|e| CatalogError::Invalid(format!("legacy '{}': {}", entry.name, e.message)))?;
        if !self.contains(&entry.tag) {
            return Err(CatalogError::Invalid(format!(
                "legacy '{name}' converts to '{}', which the catalogue does not define",
                entry.tag
            )));
        }
        crate::validate::count("quantity", entry.quantity)
            .map_err(|e| CatalogError::Invalid(format!("legacy '{name}': quantity {}", e.message)))?;
        if self.legacy.contains_key(&name) {
            return Err(CatalogError::Invalid(format!("legacy '{name}' is listed twice")));
        }
        let mapping = LegacyMapping { name: name.clone(), tag: entry.tag, quantity: entry.quantity };
        self.legacy.insert(name, mapping);
        Ok(())
    }

    fn entry(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.tags.push(TagInfo {
            name: name.to_string(),
            display_name: name.to_string(),
            family: None,
            fulfilled_by: Vec::new(),
        });
        self.index.insert(name.to_string(), self.tags.len() - 1);
        self.tags.len() - 1
    }

    /// Every tag named must exist, names must be sane, and "fulfils" must have no cycle.
    fn check(&self) -> Result<(), CatalogError> {
        for tag in &self.tags {
            crate::validate::text("tag", &tag.name, crate::validate::MAX_NAME)
                .map_err(|e| CatalogError::Invalid(format!("tag '{}': {}", tag.name, e.message)))?;
            for f in &tag.fulfilled_by {
                if !self.index.contains_key(f) {
                    return Err(CatalogError::Invalid(format!(
                        "tag '{}' is fulfilled by '{f}', which the catalogue does not define",
                        tag.name
                    )));
                }
                if f == &tag.name {
                    return Err(CatalogError::Invalid(format!("tag '{}' fulfils itself", tag.name)));
                }
            }
        }
        // Depth-first search for a cycle in the fulfils relation.
        let mut state = vec![0u8; self.tags.len()];
        fn visit(c: &Catalog, i: usize, state: &mut [u8]) -> Result<(), String> {
            match state[i] {
                1 => return Err(c.tags[i].name.clone()),
                2 => return Ok(()),
                _ => {}
            }
            state[i] = 1;
            for f in &c.tags[i].fulfilled_by {
                visit(c, c.index[f], state)?;
            }
            state[i] = 2;
            Ok(())
        }
        for i in 0..self.tags.len() {
            visit(self, i, &mut state)
                .map_err(|t| CatalogError::Invalid(format!("tiers form a cycle through '{t}'")))?;
        }
        Ok(())
    }

    pub fn get(&self, tag: &str) -> Option<&TagInfo> {
        self.index.get(tag).map(|&i| &self.tags[i])
    }

    pub fn contains(&self, tag: &str) -> bool {
        self.index.contains_key(tag)
    }

    pub fn tags(&self) -> &[TagInfo] {
        &self.tags
    }

    pub fn display_name<'a>(&'a self, tag: &'a str) -> &'a str {
        self.get(tag).map_or(tag, |t| t.display_name.as_str())
    }

    /// The tags that may stand in for `tag`, in order; empty for an unknown tag.
    pub fn fulfilled_by(&self, tag: &str) -> &[String] {
        self.get(tag).map_or(&[], |t| t.fulfilled_by.as_slice())
    }

    /// Position of a tag in the catalogue (lower tiers come first); unknown tags sort last.
    pub fn rank(&self, tag: &str) -> usize {
        self.index.get(tag).copied().unwrap_or(usize::MAX)
    }

    /// What a legacy license name or PAK SKU converts to; `None` when the catalogue does not
    /// list it (the caller reports it, never guesses). Names match exactly, after trimming.
    pub fn legacy(&self, name: &str) -> Option<&LegacyMapping> {
        self.legacy.get(name.trim())
    }

    /// The catalogue as a listing: tag → display name and fulfillers.
    pub fn listing(&self) -> BTreeMap<&str, (&str, &[String])> {
        self.tags.iter().map(|t| (t.name.as_str(), (t.display_name.as_str(), t.fulfilled_by.as_slice()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_seed_families() {
        let c = Catalog::builtin();
        assert_eq!(c.fulfilled_by("ACI Essentials"), ["ACI Advantage", "ACI Premier"]);
        assert_eq!(c.fulfilled_by("ACI Premier"), Vec::<String>::new().as_slice());
        assert!(c.fulfilled_by("C9500 32C NW Advantage").contains(&"C9500 Network Advantage".to_string()));
        let cucm = c.fulfilled_by("CUCM Basic");
        let pos = |t: &str| cucm.iter().position(|x| x == t).unwrap();
        assert!(pos("CUCM Enhanced") < pos("HCS Cisco UCM Foundation License"));
        assert!(pos("HCS Cisco UCM Foundation License") < pos("HCS Cisco UCM Standard License"));
        assert_eq!(c.display_name("CUWL"), "Cisco Unified Workspace Licensing (UWL)");
    }

    #[test]
    fn rejects_bad_catalogues() {
        assert!(matches!(Catalog::from_toml("[[tag]]\nname ="), Err(CatalogError::Syntax(_))));
        let unknown = "[[tag]]\nname = \"A\"\nfulfilled_by = [\"B\"]\n";
        assert!(Catalog::from_toml(unknown).unwrap_err().to_string().contains("'B'"));
        let cycle = "[[family]]\nname=\"f\"\ntiers=[\"A\",\"B\"]\n[[tag]]\nname=\"B\"\nfulfilled_by=[\"A\"]\n";
        assert!(Catalog::from_toml(cycle).unwrap_err().to_string().contains("cycle"));
        let twice = "[[family]]\nname=\"f\"\ntiers=[\"A\"]\n[[family]]\nname=\"g\"\ntiers=[\"A\"]\n";
        assert!(Catalog::from_toml(twice).unwrap_err().to_string().contains("two families"));
        let unknown_tag = "[[legacy]]\nname = \"X\"\ntag = \"Nope\"\n";
        assert!(Catalog::from_toml(unknown_tag).unwrap_err().to_string().contains("'Nope'"));
        let zero = "[[tag]]\nname=\"A\"\n[[legacy]]\nname=\"X\"\ntag=\"A\"\nquantity=0\n";
        assert!(Catalog::from_toml(zero).unwrap_err().to_string().contains("quantity"));
        let dup = "[[tag]]\nname=\"A\"\n[[legacy]]\nname=\"X\"\ntag=\"A\"\n[[legacy]]\nname=\"X\"\ntag=\"A\"\n";
        assert!(Catalog::from_toml(dup).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn builtin_maps_legacy_names_and_skus() {
        let c = Catalog::builtin();
        let leaf = c.legacy("ACI-LEAF-ADV").unwrap();
        assert_eq!((leaf.tag.as_str(), leaf.quantity), ("ACI Advantage", 1));
        assert_eq!(c.legacy("C9500-NW-A").unwrap().tag, "C9500 Network Advantage");
        assert!(c.legacy("NOT-A-LEGACY-NAME").is_none());
    }
}
