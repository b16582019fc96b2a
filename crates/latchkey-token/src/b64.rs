use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Strict unpadded base64url (no `=`, no stray bits), as JWS requires.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(input.as_bytes()).ok()
}

pub(crate) fn encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}
