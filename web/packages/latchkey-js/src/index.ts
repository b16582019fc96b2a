export {
  Auth,
  REFRESH_AHEAD_MS,
  expiryOf,
  type AuthOptions,
  type Organization,
  type RedirectResult,
  type SocialProvider,
  type User,
} from './auth.js';
export { LatchkeyError, Wire, type TokenStore, type WireOptions } from './fapi.js';
export { SyncEngine, type OutboxOp, type RejectedOp, type SyncOptions, type SyncRecord, type SyncState, type SyncStatus } from './sync.js';
export { bannerText } from './status.js';
