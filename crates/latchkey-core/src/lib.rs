//! Domain rules of latchkey, with no I/O: identifiers, time and randomness as injected traits,
//! credential policies, one-time codes, session lifetimes, failure lockout and rate limiting.

pub mod authz;
pub mod caller;
pub mod clock;
pub mod code;
pub mod email;
pub mod ids;
pub mod legacy_digest;
pub mod lockout;
pub mod metadata;
pub mod oauth;
pub mod org;
pub mod password;
pub mod phone;
pub mod ratelimit;
pub mod reverification;
pub mod revocation;
pub mod rng;
pub mod second_factor;
pub mod secret;
pub mod session;
pub mod sync;
pub mod template;
pub mod throttle;
pub mod tls;
pub mod user_agent;
pub mod username;

pub use clock::{Clock, ManualClock, SystemClock};
pub use rng::{OsRandom, Random};
