//! Certificates trusted beside the system's roots: a private CA that signed an internal issuer,
//! a proxy's upstream, an SMTP relay or a webhook receiver (`extra_ca_file`, docs/tls.md).
//! Only the PEM text is handled here; each client (reqwest, rustls, lettre) parses the blocks.

use std::sync::Arc;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The certificates of an extra CA file, one PEM block each. Empty: the system roots alone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtraRoots {
    blocks: Arc<Vec<String>>,
}

impl ExtraRoots {
    /// The `CERTIFICATE` blocks of `pem` (other blocks, such as a key, are refused: a CA file
    /// holds certificates only). A file with none is an error, not a silent no-op.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN ") {
            let tail = &rest[start..];
            if !tail.starts_with(BEGIN) {
                return Err("the CA file holds a PEM block that is not a CERTIFICATE".into());
            }
            let end = tail.find(END).ok_or("a CERTIFICATE block of the CA file has no END line")?;
            blocks.push(format!("{}\n", &tail[..end + END.len()]));
            rest = &tail[end + END.len()..];
        }
        if blocks.is_empty() {
            return Err("the CA file holds no PEM CERTIFICATE block".into());
        }
        Ok(Self { blocks: Arc::new(blocks) })
    }

    /// One PEM text per certificate.
    pub fn pem_blocks(&self) -> &[String] {
        &self.blocks
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtraRoots({} certificates)", self.blocks.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn certificate_blocks_are_split_and_anything_else_refused() {
        let two = ExtraRoots::from_pem(&format!("comment\n{CERT}\n\n{CERT}\n")).unwrap();
        assert_eq!(two.pem_blocks().len(), 2);
        assert!(two.pem_blocks()[0].starts_with(BEGIN) && two.pem_blocks()[0].trim_end().ends_with(END));
        assert!(ExtraRoots::from_pem("").is_err());
        assert!(ExtraRoots::from_pem("-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----").is_err());
        assert!(ExtraRoots::from_pem("-----BEGIN CERTIFICATE-----\nMIIB\n").is_err());
        assert!(ExtraRoots::default().is_empty());
    }
}
