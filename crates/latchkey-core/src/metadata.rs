//! User metadata: JSON objects with a size limit, replaced or deep-merged (Clerk's
//! `updateUserMetadata`: nested objects merge, a `null` value deletes the key).

use serde_json::{Map, Value};

/// Clerk's limit for each metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataProblem {
    NotAnObject,
    TooLarge,
}

/// Checks that `value` can be stored as metadata.
pub fn check(value: &Value) -> Result<(), MetadataProblem> {
    if !value.is_object() {
        return Err(MetadataProblem::NotAnObject);
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(MetadataProblem::TooLarge);
    }
    Ok(())
}

/// Merges `patch` into `target`: objects merge key by key, `null` removes a key, anything
/// else replaces.
pub fn deep_merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                if let Some(Value::Object(existing)) = target.get_mut(key) {
                    deep_merge(existing, inner);
                } else {
                    let mut fresh = Map::new();
                    deep_merge(&mut fresh, inner);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// Parses stored metadata text; anything unreadable counts as empty.
pub fn parse(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn nested_objects_merge_and_null_deletes() {
        let mut target = obj(json!({"plan": "free", "prefs": {"theme": "dark", "lang": "en"}, "gone": 1}));
        deep_merge(
            &mut target,
            &obj(json!({"prefs": {"lang": "fr", "tz": null, "new": {"a": null, "b": 2}}, "gone": null, "n": [1]})),
        );
        assert_eq!(
            Value::Object(target),
            json!({"plan": "free", "prefs": {"theme": "dark", "lang": "fr", "new": {"b": 2}}, "n": [1]})
        );
    }

    #[test]
    fn a_scalar_replaces_an_object_and_an_object_replaces_a_scalar() {
        let mut target = obj(json!({"a": {"x": 1}, "b": 2}));
        deep_merge(&mut target, &obj(json!({"a": 5, "b": {"y": 1}})));
        assert_eq!(Value::Object(target), json!({"a": 5, "b": {"y": 1}}));
    }

    #[test]
    fn only_objects_under_the_limit_are_metadata() {
        assert_eq!(check(&json!([])), Err(MetadataProblem::NotAnObject));
        assert_eq!(check(&json!("x")), Err(MetadataProblem::NotAnObject));
        assert_eq!(check(&json!({"k": "v".repeat(MAX_METADATA_BYTES)})), Err(MetadataProblem::TooLarge));
        assert_eq!(check(&json!({"k": "v"})), Ok(()));
        assert!(parse("not json").is_empty());
    }
}
