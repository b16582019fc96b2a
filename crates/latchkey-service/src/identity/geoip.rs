//! The city and country of a session's address, from a local MaxMind-format database
//! (GeoLite2-City or GeoIP2-City, `geoip_database`): read once at start, looked up in memory,
//! never sent anywhere. Without one, session activity names no place.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{geoip2, Reader};

use super::activity::Place;

pub struct GeoIp {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

impl GeoIp {
    /// Opens a database file; the error names the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|e| format!("geoip_database {}: cannot read it: {e}", path.display()))?;
        Ok(Self { reader })
    }

    /// From the bytes of a database (tests build one in memory).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        Reader::from_source(bytes).map(|reader| Self { reader }).map_err(|e| format!("geoip_database: {e}"))
    }

    /// The English city name and the ISO country code of `ip`, as far as the database knows.
    pub fn place(&self, ip: &str) -> Place {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return Place::default();
        };
        let found = self.reader.lookup(ip).and_then(|r| r.decode::<geoip2::City>());
        match found {
            Ok(Some(city)) => Place {
                city: city.city.names.english.map(str::to_owned),
                country: city.country.iso_code.map(str::to_owned),
            },
            _ => Place::default(),
        }
    }
}

/// Test support: a database built in memory.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    /// A MaxMind DB (format 2.0, docs at maxmind.github.io/MaxMind-DB) of IPv4 with one network,
    /// `first_octet`.0.0.0/8, whose record names `city` in `country`: just enough to test the
    /// lookup without shipping a real database.
    pub fn tiny_city_database(first_octet: u8, city: &str, country: &str) -> Vec<u8> {
        fn head(kind: u8, size: usize, out: &mut Vec<u8>) {
            assert!(size < 29);
            if kind <= 7 {
                out.push((kind << 5) | size as u8);
            } else {
                out.push(size as u8);
                out.push(kind - 7);
            }
        }
        fn text(s: &str, out: &mut Vec<u8>) {
            head(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        fn uint(kind: u8, v: u64, width: usize, out: &mut Vec<u8>) {
            head(kind, width, out);
            out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
        }
        let mut data = Vec::new();
        head(7, 2, &mut data);
        text("city", &mut data);
        head(7, 1, &mut data);
        text("names", &mut data);
        head(7, 1, &mut data);
        text("en", &mut data);
        text(city, &mut data);
        text("country", &mut data);
        head(7, 1, &mut data);
        text("iso_code", &mut data);
        text(country, &mut data);

        // Eight nodes follow the prefix's bits; the other branch of each is "no data".
        let node_count: u32 = 8;
        let mut tree = Vec::new();
        for depth in 0..8u32 {
            let bit = (first_octet >> (7 - depth)) & 1;
            let onward = if depth == 7 { node_count + 16 } else { depth + 1 };
            let (left, right) = if bit == 0 { (onward, node_count) } else { (node_count, onward) };
            tree.extend_from_slice(&left.to_be_bytes()[1..]);
            tree.extend_from_slice(&right.to_be_bytes()[1..]);
        }
        let mut out = tree;
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        head(7, 9, &mut out);
        text("node_count", &mut out);
        uint(6, node_count.into(), 4, &mut out);
        text("record_size", &mut out);
        uint(5, 24, 2, &mut out);
        text("ip_version", &mut out);
        uint(5, 4, 2, &mut out);
        text("database_type", &mut out);
        text("GeoLite2-City", &mut out);
        text("languages", &mut out);
        head(11, 1, &mut out);
        text("en", &mut out);
        text("binary_format_major_version", &mut out);
        uint(5, 2, 2, &mut out);
        text("binary_format_minor_version", &mut out);
        uint(5, 0, 2, &mut out);
        text("build_epoch", &mut out);
        uint(9, 1_700_000_000, 8, &mut out);
        text("description", &mut out);
        head(7, 1, &mut out);
        text("en", &mut out);
        text("test", &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::testing::tiny_city_database;
    use super::*;

    #[test]
    fn an_address_in_the_database_is_placed() {
        let geo = GeoIp::from_bytes(tiny_city_database(203, "Springfield", "US")).unwrap();
        assert_eq!(geo.place("203.0.113.9"), Place { city: Some("Springfield".into()), country: Some("US".into()) });
        assert_eq!(geo.place("198.51.100.1"), Place::default(), "outside its network");
        assert_eq!(geo.place("unknown"), Place::default());
        assert!(GeoIp::from_bytes(b"not a database".to_vec()).is_err());
    }
}
