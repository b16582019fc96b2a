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

#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub state: RecordState,
    /// Whether the stored record changes (and so gets a new sequence number).
    pub changed: bool,
    /// The fields of a put that lost to newer writes, or of a delete that newer writes kept.
    pub lost: Vec<String>,
}

impl Merged {
    /// What the client is told won where it lost: `None` when its operation took full effect.
    pub fn winning(&self, change: Change<'_>) -> Option<Value> {
        if self.lost.is_empty() && (matches!(change, Change::Put(_)) || !self.state.is_live()) {
            return None;
        }
        if !self.state.is_live() {
            return Some(serde_json::json!({"deleted": true}));
        }
        let fields: Map<String, Value> = match change {
            Change::Put(_) => {
                self.lost.iter().filter_map(|k| Some((k.clone(), self.state.fields.get(k)?.clone()))).collect()
            }
            Change::Delete => self.state.fields.clone(),
        };
        Some(serde_json::json!({"deleted": false, "fields": fields}))
    }
}

/// Merges one operation, stamped `stamp` (canonical), into the stored record, if any.
/// `required` are the fields a record must be created with.
pub fn merge(
    current: Option<&RecordState>,
    change: Change<'_>,
    stamp: &str,
    required: &[&str],
) -> Result<Merged, Rejection> {
    let mut state = current.cloned().unwrap_or_default();
    let above_floor = state.floor.as_deref().is_none_or(|f| stamp > f);
    match change {
        Change::Put(fields) => {
            if !state.is_live() && above_floor {
                if let Some(missing) = required.iter().find(|r| fields.get(**r).is_none_or(Value::is_null)) {
                    return Err(Rejection::new(
                        "required_field",
                        format!("`{missing}` is required to create a record in this table."),
                    ));
                }
            }
            let mut lost = Vec::new();
            let mut changed = false;
            for (name, value) in fields {
                let newer = above_floor && state.clocks.get(name).is_none_or(|c| stamp > c.as_str());
                if newer {
                    state.fields.insert(name.clone(), value.clone());
                    state.clocks.insert(name.clone(), stamp.to_owned());
                    changed = true;
                } else if state.clocks.get(name).is_none_or(|c| c != stamp) {
                    // Equal stamps mean this very write was merged before: a replay, not a loss.
                    lost.push(name.clone());
                }
            }
            Ok(Merged { state, changed, lost })
        }
        Change::Delete => {
            if !above_floor {
                let lost = state.fields.keys().cloned().collect();
                return Ok(Merged { state, changed: false, lost });
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
            let lost = state.fields.keys().cloned().collect();
            Ok(Merged { state, changed: true, lost })
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

    fn apply(state: Option<RecordState>, change: Change<'_>, stamp: &str) -> Merged {
        merge(state.as_ref(), change, stamp, &[]).unwrap()
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
        assert_eq!(m.winning(Change::Put(&old)), Some(json!({"deleted": false, "fields": {"x": 2, "y": 1}})));
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
        assert_eq!(gone.winning(Change::Delete), None);
        let later = put(json!({"y": 2}));
        let s2 = apply(Some(s), Change::Put(&later), "4").state;
        let kept = apply(Some(s2), Change::Delete, "3");
        assert_eq!(kept.state.fields, put(json!({"y": 2})));
        assert_eq!(kept.winning(Change::Delete), Some(json!({"deleted": false, "fields": {"y": 2}})));
        let late_put = put(json!({"x": 7}));
        let lost = apply(Some(gone.state), Change::Put(&late_put), "1");
        assert!(!lost.changed);
        assert_eq!(lost.winning(Change::Put(&late_put)), Some(json!({"deleted": true})));
    }

    #[test]
    fn creating_needs_the_required_fields_updating_does_not() {
        let partial = put(json!({"note": "hi"}));
        let err = merge(None, Change::Put(&partial), "1", &["kind"]).unwrap_err();
        assert_eq!(err.code, "required_field");
        let full = put(json!({"kind": "bottle"}));
        let s = merge(None, Change::Put(&full), "1", &["kind"]).unwrap().state;
        merge(Some(&s), Change::Put(&partial), "2", &["kind"]).unwrap();
        let null_kind = put(json!({"kind": null}));
        assert!(merge(None, Change::Put(&null_kind), "1", &["kind"]).is_err());
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
                let mut state: Option<RecordState> = None;
                for &i in order {
                    let (fields, stamp) = &stamped[i];
                    let change = fields.as_ref().map_or(Change::Delete, Change::Put);
                    state = Some(merge(state.as_ref(), change, stamp, &[]).unwrap().state);
                }
                state.unwrap_or_default()
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
