//! Tables declared in configuration (`[sync.tables.<name>]`) and the validation of the fields
//! an operation writes. A table names its typed fields, which of them a new record must have,
//! size limits, and the organization permissions needed to read and write it in an
//! organization's space (in a personal space, the owner may do everything).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Rejection;
use crate::authz::parse_permission;

/// Default bound of a string field, in characters.
pub const DEFAULT_MAX_STRING: usize = 10_000;
/// Default bound of a json field, in bytes of its JSON text.
pub const DEFAULT_MAX_JSON: usize = 16 * 1024;
/// Default bound of the fields one operation writes, in bytes of their JSON text.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;
/// 9999-12-31T23:59:59.999Z: timestamps are milliseconds since the Unix epoch up to here.
const MAX_TIMESTAMP: i64 = 253_402_300_799_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    /// Milliseconds since the Unix epoch.
    Timestamp,
    Json,
    /// The id of a record of `table` (not checked for existence: offline devices cannot
    /// keep that promise, and a deleted target must not make a partner's edit fail).
    Reference,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Characters of a string, bytes of a json value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The only values a string may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// The table a reference points into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub fields: BTreeMap<String, FieldSpec>,
    /// Bytes of the fields one operation may write.
    #[serde(default = "default_record_bytes")]
    pub max_bytes: usize,
    /// Needed to read the table in an organization's space; none means every member may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_permission: Option<String>,
    /// Needed to write the table in an organization's space; none means every member may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_permission: Option<String>,
}

fn default_record_bytes() -> usize {
    DEFAULT_MAX_RECORD_BYTES
}

pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a whole set of tables, naming the first problem.
pub fn check_tables(tables: &BTreeMap<String, TableSpec>) -> Result<(), String> {
    for (name, table) in tables {
        if !valid_name(name) {
            return Err(format!("sync table `{name}`: names are lower-case letters, digits and _"));
        }
        if table.fields.is_empty() {
            return Err(format!("sync table `{name}` has no fields"));
        }
        for permission in [&table.read_permission, &table.write_permission].into_iter().flatten() {
            if parse_permission(permission).is_none() {
                return Err(format!(
                    "sync table `{name}`: `{permission}` is not a permission of the form org:<feature>:<action>"
                ));
            }
        }
        for (field, spec) in &table.fields {
            if !valid_name(field) {
                return Err(format!(
                    "sync table `{name}`: field `{field}`: names are lower-case letters, digits and _"
                ));
            }
            match (spec.kind, &spec.table) {
                (FieldType::Reference, Some(target)) if tables.contains_key(target) => {}
                (FieldType::Reference, Some(target)) => {
                    return Err(format!("sync table `{name}`: field `{field}` refers to unknown table `{target}`"));
                }
                (FieldType::Reference, None) => {
                    return Err(format!("sync table `{name}`: reference field `{field}` needs `table`"));
                }
                (_, Some(_)) => return Err(format!("sync table `{name}`: only reference fields take `table`")),
                (_, None) => {}
            }
            if spec.values.is_some() && spec.kind != FieldType::String {
                return Err(format!("sync table `{name}`: only string fields take `values`"));
            }
            if (spec.min.is_some() || spec.max.is_some())
                && !matches!(spec.kind, FieldType::Integer | FieldType::Number | FieldType::Timestamp)
            {
                return Err(format!("sync table `{name}`: only numeric fields take `min` and `max`"));
            }
        }
    }
    Ok(())
}

impl TableSpec {
    /// The fields a new record must have.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter(|(_, s)| s.required).map(|(n, _)| n.as_str())
    }

    /// Checks the fields a `put` writes (not whether a new record has its required ones:
    /// only the merge knows whether the record is new).
    pub fn check_fields(&self, fields: &Map<String, Value>, encoded_len: usize) -> Result<(), Rejection> {
        if fields.is_empty() {
            return Err(Rejection::new("no_fields", "A put must write at least one field."));
        }
        if encoded_len > self.max_bytes {
            return Err(Rejection::new(
                "record_too_large",
                format!("The fields of this operation take {encoded_len} bytes; this table allows {}.", self.max_bytes),
            ));
        }
        for (name, value) in fields {
            let spec = self
                .fields
                .get(name)
                .ok_or_else(|| Rejection::new("unknown_field", format!("This table has no field `{name}`.")))?;
            check_value(name, spec, value)?;
        }
        Ok(())
    }
}

fn check_value(name: &str, spec: &FieldSpec, value: &Value) -> Result<(), Rejection> {
    let wrong = |what: &str| Rejection::new("invalid_field", format!("`{name}` must be {what}."));
    if value.is_null() {
        return if spec.required {
            Err(Rejection::new("required_field", format!("`{name}` is required.")))
        } else {
            Ok(())
        };
    }
    let in_range = |x: f64| spec.min.is_none_or(|m| x >= m) && spec.max.is_none_or(|m| x <= m);
    let range_text = || match (spec.min, spec.max) {
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        (Some(a), None) => format!(" of at least {a}"),
        (None, Some(b)) => format!(" of at most {b}"),
        (None, None) => String::new(),
    };
    match spec.kind {
        FieldType::String => {
            let s = value.as_str().ok_or_else(|| wrong("a string"))?;
            let max = spec.max_length.unwrap_or(DEFAULT_MAX_STRING);
            if s.chars().count() > max {
                return Err(Rejection::new("field_too_long", format!("`{name}` may have at most {max} characters.")));
            }
            if let Some(values) = &spec.values {
                if !values.iter().any(|v| v == s) {
                    return Err(wrong(&format!("one of {}", values.join(", "))));
                }
            }
        }
        FieldType::Integer => {
            let i = value.as_i64().ok_or_else(|| wrong("an integer"))?;
            if !in_range(i as f64) {
                return Err(wrong(&format!("an integer{}", range_text())));
            }
        }
        FieldType::Number => {
            let x = value.as_f64().ok_or_else(|| wrong("a number"))?;
            if !in_range(x) {
                return Err(wrong(&format!("a number{}", range_text())));
            }
        }
        FieldType::Boolean => {
            value.as_bool().ok_or_else(|| wrong("true or false"))?;
        }
        FieldType::Timestamp => {
            let t = value.as_i64().filter(|t| (0..=MAX_TIMESTAMP).contains(t));
            let t = t.ok_or_else(|| wrong("a timestamp in milliseconds since 1970-01-01"))?;
            if !in_range(t as f64) {
                return Err(wrong(&format!("a timestamp{}", range_text())));
            }
        }
        FieldType::Json => {
            let max = spec.max_length.unwrap_or(DEFAULT_MAX_JSON);
            if value.to_string().len() > max {
                return Err(Rejection::new(
                    "field_too_long",
                    format!("`{name}` may take at most {max} bytes of JSON."),
                ));
            }
        }
        FieldType::Reference => {
            let id = value.as_str().filter(|s| super::valid_id(s));
            id.ok_or_else(|| wrong("the id of a record (1 to 128 letters, digits, _ or -)"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn table() -> TableSpec {
        toml_table(
            r#"
            write_permission = "org:logs:write"
            [fields]
            baby_id = { type = "reference", table = "feeds", required = true }
            kind = { type = "string", required = true, values = ["breast", "bottle"] }
            amount_ml = { type = "integer", min = 0, max = 2000 }
            weight = { type = "number", min = 0 }
            asleep = { type = "boolean" }
            started_at = { type = "timestamp", required = true }
            note = { type = "string", max_length = 5 }
            extra = { type = "json", max_length = 20 }
            "#,
        )
    }

    fn toml_table(text: &str) -> TableSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn valid_fields_pass() {
        let t = table();
        let f = json!({"baby_id": "b1", "kind": "bottle", "amount_ml": 120, "weight": 3.5, "asleep": false,
            "started_at": 1_700_000_000_000_i64, "note": "ok", "extra": {"a": 1}});
        t.check_fields(f.as_object().unwrap(), 10).unwrap();
        t.check_fields(json!({"note": null}).as_object().unwrap(), 10).unwrap();
        assert_eq!(t.required().collect::<Vec<_>>(), ["baby_id", "kind", "started_at"]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let t = table();
        let cases = [
            (json!({"nope": 1}), "unknown_field"),
            (json!({"kind": "cup"}), "invalid_field"),
            (json!({"kind": 3}), "invalid_field"),
            (json!({"kind": null}), "required_field"),
            (json!({"amount_ml": 1.5}), "invalid_field"),
            (json!({"amount_ml": 2001}), "invalid_field"),
            (json!({"amount_ml": "1"}), "invalid_field"),
            (json!({"weight": -1}), "invalid_field"),
            (json!({"asleep": "yes"}), "invalid_field"),
            (json!({"started_at": -1}), "invalid_field"),
            (json!({"started_at": "2024-01-01"}), "invalid_field"),
            (json!({"note": "toolong"}), "field_too_long"),
            (json!({"extra": {"a": "0123456789012345"}}), "field_too_long"),
            (json!({"baby_id": "has space"}), "invalid_field"),
            (json!({}), "no_fields"),
        ];
        for (fields, code) in cases {
            let err = t.check_fields(fields.as_object().unwrap(), 10).unwrap_err();
            assert_eq!(err.code, code, "{fields}");
        }
        let err = t.check_fields(json!({"note": "a"}).as_object().unwrap(), t.max_bytes + 1).unwrap_err();
        assert_eq!(err.code, "record_too_large");
    }

    #[test]
    fn bad_table_declarations_are_refused_with_the_reason() {
        let mut tables = BTreeMap::new();
        tables.insert("feeds".to_owned(), table());
        check_tables(&tables).unwrap();
        let mut broken = table();
        broken.fields.get_mut("baby_id").unwrap().table = Some("babies".into());
        tables.insert("feeds".to_owned(), broken);
        assert!(check_tables(&tables).unwrap_err().contains("unknown table `babies`"));
        let mut broken = table();
        broken.write_permission = Some("write".into());
        tables.insert("feeds".to_owned(), broken);
        assert!(check_tables(&tables).unwrap_err().contains("org:<feature>:<action>"));
        tables.clear();
        tables.insert("Feeds".to_owned(), table());
        assert!(check_tables(&tables).is_err());
    }
}
