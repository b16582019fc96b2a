//! Hybrid logical clock stamps. On the wire a stamp is `"<wall ms>-<counter>"` (anything after
//! a second `-` is the client's node id and ignored: the server knows who pushed). Stored, it
//! is canonical: fixed-width wall and counter, then the pushing client's id, so that comparing
//! two stamps as strings orders them by time, then counter, then client id (the tie-break).

use super::Rejection;

const WALL_DIGITS: usize = 15;
const MAX_WALL: i64 = 999_999_999_999_999;
const MAX_COUNTER: u32 = 99_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub wall_ms: i64,
    pub counter: u32,
}

impl Stamp {
    /// Parses the wire form.
    pub fn parse(s: &str) -> Result<Self, Rejection> {
        let bad =
            || Rejection::new("invalid_hlc", format!("`{s}` is not a clock stamp of the form <wall ms>-<counter>"));
        let mut parts = s.splitn(3, '-');
        let wall = parts.next().filter(|p| !p.is_empty() && p.len() <= WALL_DIGITS).ok_or_else(bad)?;
        let counter = parts.next().filter(|p| !p.is_empty() && p.len() <= 5).ok_or_else(bad)?;
        if !wall.bytes().all(|b| b.is_ascii_digit()) || !counter.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let wall_ms = wall.parse::<i64>().map_err(|_| bad())?;
        let counter = counter.parse::<u32>().map_err(|_| bad())?;
        if wall_ms > MAX_WALL || counter > MAX_COUNTER {
            return Err(bad());
        }
        Ok(Self { wall_ms, counter })
    }

    /// The stamp the server accepts: one running further ahead of the server's clock than
    /// `max_ahead_ms` is pulled back to that bound, so a device whose clock is wrong cannot
    /// win every later conflict.
    pub fn bounded(self, now_ms: i64, max_ahead_ms: i64) -> Self {
        let limit = now_ms.saturating_add(max_ahead_ms).min(MAX_WALL);
        if self.wall_ms > limit {
            Self { wall_ms: limit, counter: self.counter }
        } else {
            self
        }
    }

    /// The stored form, ordered as strings.
    pub fn canonical(self, node: &str) -> String {
        format!("{:0w$}-{:05}-{node}", self.wall_ms, self.counter, w = WALL_DIGITS)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_wire_form_and_ignores_a_node() {
        assert_eq!(Stamp::parse("1700000000000-3").unwrap(), Stamp { wall_ms: 1_700_000_000_000, counter: 3 });
        assert_eq!(Stamp::parse("5-0-client_a").unwrap(), Stamp { wall_ms: 5, counter: 0 });
        for bad in ["", "-", "12", "12-", "-3", "a-1", "1-b", "1-123456", "1234567890123456-0", "+1-0", " 1-0"] {
            assert_eq!(Stamp::parse(bad).unwrap_err().code, "invalid_hlc", "{bad:?}");
        }
    }

    #[test]
    fn canonical_strings_order_by_wall_counter_then_node() {
        let a = Stamp { wall_ms: 9, counter: 99 }.canonical("z");
        let b = Stamp { wall_ms: 10, counter: 0 }.canonical("a");
        let c = Stamp { wall_ms: 10, counter: 0 }.canonical("b");
        let d = Stamp { wall_ms: 10, counter: 1 }.canonical("a");
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn a_stamp_far_ahead_is_pulled_back_to_the_bound() {
        let now = 1_000_000;
        let ahead = Stamp { wall_ms: now + 3_600_000, counter: 2 };
        assert_eq!(ahead.bounded(now, 60_000), Stamp { wall_ms: now + 60_000, counter: 2 });
        let fine = Stamp { wall_ms: now + 59_000, counter: 2 };
        assert_eq!(fine.bounded(now, 60_000), fine);
        let behind = Stamp { wall_ms: 5, counter: 0 };
        assert_eq!(behind.bounded(now, 60_000), behind);
    }
}
