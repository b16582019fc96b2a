//! Operations written under an older schema version, brought forward (`[[sync.migrations]]`):
//! an app that renames or drops a field keeps accepting the outbox of a phone that was offline
//! through the update, instead of rejecting its ops as unknown fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::{valid_name, TableSpec};

/// How an operation on `table` written under `version - 1` becomes one of `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    pub version: i64,
    pub table: String,
    /// Old field name → new field name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// Fields the new version no longer has: dropped from old operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl Migration {
    /// Rewrites the fields of one put (removals first, then renames).
    pub fn apply(&self, fields: &mut Map<String, Value>) {
        for name in &self.remove {
            fields.remove(name);
        }
        for (old, new) in &self.rename {
            if let Some(value) = fields.remove(old) {
                fields.insert(new.clone(), value);
            }
        }
    }
}

/// The steps that bring an operation of `from` up to `current`, in order.
pub fn steps_from(migrations: &[Migration], from: i64) -> Vec<&Migration> {
    let mut steps: Vec<&Migration> = migrations.iter().filter(|m| m.version > from).collect();
    steps.sort_by_key(|m| m.version);
    steps
}

/// Checks the configured migrations against the served tables and the accepted versions.
pub fn check_migrations(
    migrations: &[Migration],
    tables: &BTreeMap<String, TableSpec>,
    schema_version: i64,
) -> Result<(), String> {
    for m in migrations {
        let at = format!("sync migration to version {} of `{}`", m.version, m.table);
        if !(2..=schema_version).contains(&m.version) {
            return Err(format!("{at}: the version must be between 2 and sync.schema_version ({schema_version})"));
        }
        if !tables.contains_key(&m.table) {
            return Err(format!("{at}: there is no sync table `{}`", m.table));
        }
        let names = m.rename.iter().flat_map(|(a, b)| [a, b]).chain(&m.remove);
        if let Some(bad) = names.into_iter().find(|n| !valid_name(n)) {
            return Err(format!("{at}: `{bad}` is not a field name (lower-case letters, digits and _)"));
        }
        if let Some(both) = m.remove.iter().find(|n| m.rename.contains_key(*n)) {
            return Err(format!("{at}: `{both}` is both renamed and removed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn step(version: i64, rename: &[(&str, &str)], remove: &[&str]) -> Migration {
        Migration {
            version,
            table: "feeds".into(),
            rename: rename.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
            remove: remove.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn steps_apply_in_version_order_from_the_client_version() {
        let migrations = [step(3, &[("ml", "amount_ml")], &[]), step(2, &[("amount", "ml")], &["legacy"])];
        let mut fields = json!({"amount": 5, "legacy": true, "kind": "bottle"}).as_object().unwrap().clone();
        for s in steps_from(&migrations, 1) {
            s.apply(&mut fields);
        }
        assert_eq!(Value::Object(fields), json!({"amount_ml": 5, "kind": "bottle"}));
        let from_two: Vec<i64> = steps_from(&migrations, 2).iter().map(|m| m.version).collect();
        assert_eq!(from_two, [3]);
        assert!(steps_from(&migrations, 3).is_empty());
    }

    #[test]
    fn bad_migrations_are_refused_with_a_reason() {
        let tables: BTreeMap<String, TableSpec> =
            toml::from_str("[feeds.fields]\nkind = { type = \"string\" }").unwrap();
        assert!(check_migrations(&[step(2, &[("a", "kind")], &["b"])], &tables, 2).is_ok());
        let cases = [
            (step(1, &[], &[]), "between 2 and"),
            (step(3, &[], &[]), "between 2 and"),
            (Migration { table: "sleeps".into(), ..step(2, &[], &[]) }, "no sync table"),
            (step(2, &[("Bad-Name", "kind")], &[]), "not a field name"),
            (step(2, &[("a", "kind")], &["a"]), "both renamed and removed"),
        ];
        for (m, expected) in cases {
            let err = check_migrations(&[m], &tables, 2).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
