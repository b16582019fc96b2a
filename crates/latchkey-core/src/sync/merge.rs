//! Field-level last-write-wins. A record is a map of fields, each with the stamp of the write
//! that set it, plus a *floor*: the stamp of the latest delete. A field write wins when its
//! stamp is above both the field's stamp and the floor; a delete raises the floor and drops
//! every field written before it; a record with no fields left is deleted (a tombstone).
//! Merging is commutative, associative and idempotent, so the server reaches the same record
//! whatever order the operations of many devices arrive in, and a replayed operation changes
//! nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Rejection;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    pub fields: Map<String, Value>,
    /// Canonical stamp of each field's winning write.
    pub clocks: BTreeMap<String, String>,
    /// Canonical stamp of the latest delete.
    pub floor: Option<String>,
}

impl RecordState {
    pub fn is_live(&self) -> bool {
        !self.fields.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Sets the given fields (null clears one); creates the record if it is not live.
    Put(&'a Map<String, Value>),
    Delete,
}

/// What merging one operation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Whether the stored record changes (and so gets a new sequence number).
    pub changed: bool,
    /// The fields of a put that lost to newer writes, or of a delete that newer writes kept.
    pub lost: Vec<String>,
}

impl Merged {
    /// What the client is told won where it lost: `None` when its operation took full effect.
    pub fn winning(&self, state: &RecordState, change: Change<'_>) -> Option<Value> {
        if self.lost.is_empty() && (matches!(change, Change::Put(_)) || !state.is_live()) {
            return None;
        }
        if !state.is_live() {
            return Some(serde_json::json!({"deleted": true}));
        }
        let fields: Map<String, Value> = match change {
            Change::Put(_) => {
                self.lost.iter().filter_map(|k| Some((k.clone(), state.fields.get(k)?.clone()))).collect()
            }
            Change::Delete => state.fields.clone(),
        };
        Some(serde_json::json!({"deleted": false, "fields": fields}))
    }
}

/// Merges one operation, stamped `stamp` (canonical), into `state` (the default state for a
/// record never seen). `required` are the fields a record must be created with; when they
/// are missing the operation is refused and `state` is left as it was.
pub fn merge(
    state: &mut RecordState,
    change: Change<'_>,
    stamp: &str,
    required: &[String],
) -> Result<Merged, Rejection> {
    let above_floor = state.floor.as_deref().is_none_or(|f| stamp > f);
    match change {
        Change::Put(fields) => {
            if !state.is_live() && above_floor {
                if let Some(missing) = required.iter().find(|r| fields.get(r.as_str()).is_none_or(Value::is_null)) {
                    return Err(Rejection::new(
                        "required_field",
                        format!("`{missing}` is required to create a record in this table."),
                    ));
                }
            }
            let mut lost = Vec::new();
            let mut changed = false;
            for (name, value) in fields {
                let clock = state.clocks.get(name);
                if above_floor && clock.is_none_or(|c| stamp > c.as_str()) {
                    state.fields.insert(name.clone(), value.clone());
                    state.clocks.insert(name.clone(), stamp.to_owned());
                    changed = true;
                } else if clock.is_none_or(|c| c != stamp) {
                    // Equal stamps mean this very write was merged before: a replay, not a loss.
                    lost.push(name.clone());
                }
            }
            Ok(Merged { changed, lost })
        }
        Change::Delete => {
            if !above_floor {
                return Ok(Merged { changed: false, lost: state.fields.keys().cloned().collect() });
            }
            state.floor = Some(stamp.to_owned());
            let clocks = std::mem::take(&mut state.clocks);
            for (name, clock) in clocks {
                if clock.as_str() > stamp {
                    state.clocks.insert(name, clock);
                } else {
                    state.fields.remove(&name);
                }
            }
            Ok(Merged { changed: true, lost: state.fields.keys().cloned().collect() })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn put(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    struct Applied {
        state: RecordState,
        changed: bool,
        lost: Vec<String>,
        winning: Option<Value>,
    }

    fn apply(state: Option<RecordState>, change: Change<'_>, stamp: &str) -> Applied {
        let mut state = state.unwrap_or_default();
        let m = merge(&mut state, change, stamp, &[]).unwrap();
        let winning = m.winning(&state, change);
        Applied { state, changed: m.changed, lost: m.lost, winning }
    }

    #[test]
    fn newer_fields_win_older_fields_lose_field_by_field() {
        let a = put(json!({"x": 1, "y": 1}));
        let s = apply(None, Change::Put(&a), "2").state;
        let b = put(json!({"x": 2}));
        let m = apply(Some(s.clone()), Change::Put(&b), "3");
        assert!(m.changed && m.lost.is_empty());
        assert_eq!(m.state.fields, put(json!({"x": 2, "y": 1})));
        let old = put(json!({"x": 0, "y": 9}));
        let m = apply(Some(m.state), Change::Put(&old), "1");
        assert!(!m.changed);
        assert_eq!(m.lost, ["x", "y"]);
        assert_eq!(m.winning, Some(json!({"deleted": false, "fields": {"x": 2, "y": 1}})));
    }

    #[test]
    fn a_replay_changes_nothing_and_is_not_a_loss() {
        let a = put(json!({"x": 1}));
        let s = apply(None, Change::Put(&a), "5").state;
        let m = apply(Some(s.clone()), Change::Put(&a), "5");
        assert!(!m.changed && m.lost.is_empty());
        assert_eq!(m.state, s);
    }

    #[test]
    fn a_delete_drops_older_fields_and_keeps_newer_ones() {
        let a = put(json!({"x": 1}));
        let s = apply(None, Change::Put(&a), "2").state;
        let gone = apply(Some(s.clone()), Change::Delete, "3");
        assert!(!gone.state.is_live() && gone.changed);
        assert_eq!(gone.winning, None);
        let later = put(json!({"y": 2}));
        let s2 = apply(Some(s), Change::Put(&later), "4").state;
        let kept = apply(Some(s2), Change::Delete, "3");
        assert_eq!(kept.state.fields, put(json!({"y": 2})));
        assert_eq!(kept.winning, Some(json!({"deleted": false, "fields": {"y": 2}})));
        let late_put = put(json!({"x": 7}));
        let lost = apply(Some(gone.state), Change::Put(&late_put), "1");
        assert!(!lost.changed);
        assert_eq!(lost.winning, Some(json!({"deleted": true})));
    }

    #[test]
    fn creating_needs_the_required_fields_updating_does_not() {
        let required = ["kind".to_owned()];
        let partial = put(json!({"note": "hi"}));
        let mut empty = RecordState::default();
        let err = merge(&mut empty, Change::Put(&partial), "1", &required).unwrap_err();
        assert_eq!(err.code, "required_field");
        assert_eq!(empty, RecordState::default(), "a refused operation leaves the record alone");
        let full = put(json!({"kind": "bottle"}));
        let mut s = RecordState::default();
        merge(&mut s, Change::Put(&full), "1", &required).unwrap();
        merge(&mut s, Change::Put(&partial), "2", &required).unwrap();
        let null_kind = put(json!({"kind": null}));
        assert!(merge(&mut RecordState::default(), Change::Put(&null_kind), "1", &required).is_err());
    }

    fn op_strategy() -> impl Strategy<Value = (Option<Map<String, Value>>, u32)> {
        let fields = proptest::collection::btree_map("[abc]", 0..5i64, 1..3)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<_, _>>());
        (proptest::option::weighted(0.75, fields), 0..1000u32)
    }

    proptest! {
        /// Any arrival order of the same operations gives the same record.
        #[test]
        fn merging_converges_in_any_order(ops in proptest::collection::vec(op_strategy(), 1..12), seed in any::<u64>()) {
            let stamped: Vec<_> = ops.iter().enumerate().map(|(i, (f, t))| (f.clone(), format!("{t:05}-{i:03}"))).collect();
            let run = |order: &[usize]| {
                let mut state = RecordState::default();
                for &i in order {
                    let (fields, stamp) = &stamped[i];
                    let change = fields.as_ref().map_or(Change::Delete, Change::Put);
                    merge(&mut state, change, stamp, &[]).unwrap();
                }
                state
            };
            let forward: Vec<usize> = (0..stamped.len()).collect();
            let mut shuffled = forward.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut twice = forward.clone();
            twice.extend(forward.iter().rev());
            let expected = run(&forward);
            prop_assert_eq!(&run(&shuffled), &expected);
            prop_assert_eq!(&run(&twice), &expected);
        }
    }
}
