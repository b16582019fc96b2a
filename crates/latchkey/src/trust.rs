//! `extra_ca_file`: the certificates every outgoing TLS connection trusts beside the system's
//! roots (docs/tls.md). Read once at start; a file that cannot be used stops the start.

use std::path::Path;

use anyhow::anyhow;
use latchkey_core::tls::ExtraRoots;

/// The certificates of the file at `path` (none without one). An unreadable file, one with no
/// certificate, or one with a damaged certificate is an error naming the file.
pub fn read_extra_roots(path: Option<&Path>) -> anyhow::Result<ExtraRoots> {
    let Some(path) = path else {
        return Ok(ExtraRoots::default());
    };
    let pem =
        std::fs::read_to_string(path).map_err(|e| anyhow!("extra_ca_file {}: cannot read it: {e}", path.display()))?;
    let roots = ExtraRoots::from_pem(&pem).map_err(|e| anyhow!("extra_ca_file {}: {e}", path.display()))?;
    // Each must be a certificate a TLS client can trust: a damaged one stops the start here
    // rather than leaving some client without the CA.
    for (i, block) in roots.pem_blocks().iter().enumerate() {
        use rustls::pki_types::pem::PemObject;
        let usable = rustls::pki_types::CertificateDer::from_pem_slice(block.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|der| rustls::RootCertStore::empty().add(der).map_err(|e| e.to_string()));
        if let Err(e) = usable {
            return Err(anyhow!("extra_ca_file {}: certificate {} is not usable: {e}", path.display(), i + 1));
        }
    }
    Ok(roots)
}
