//! Randomness is read only through [`Random`], so tests can make it repeatable.

use rand_core::{CryptoRng, RngCore};

pub trait Random: Send + Sync + 'static {
    /// Fills `buf` from a cryptographically secure source.
    fn fill(&self, buf: &mut [u8]);

    fn bytes<const N: usize>(&self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A uniform integer in `0..bound` (rejection sampling, no modulo bias).
    fn below(&self, bound: u32) -> u32 {
        if bound <= 1 {
            return 0;
        }
        let zone = u32::MAX - (u32::MAX % bound);
        loop {
            let mut b = [0u8; 4];
            self.fill(&mut b);
            let v = u32::from_le_bytes(b);
            if v < zone {
                return v % bound;
            }
        }
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand_core::OsRng.fill_bytes(buf);
    }
}

/// Adapts a [`Random`] to the `rand_core` traits that crypto crates take.
pub struct RngAdapter<'a>(pub &'a dyn Random);

impl RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for RngAdapter<'_> {}

/// A deterministic generator for tests (xorshift; never for production secrets).
#[derive(Debug)]
pub struct SeededRandom(std::sync::Mutex<u64>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(std::sync::Mutex::new(seed | 1))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for byte in buf.iter_mut() {
            let mut x = *state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *state = x;
            *byte = (x >> 24) as u8;
        }
    }
}
