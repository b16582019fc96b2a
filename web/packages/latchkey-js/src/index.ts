export {
  Auth,
  EMAIL_LINK_POLL_MS,
  REFRESH_AHEAD_MS,
  emailLinkStatus,
  expiryOf,
  type AuthOptions,
  type EmailLinkOptions,
  type EmailLinkResult,
  type EmailLinkStatus,
  type Organization,
  type RedirectResult,
  type SignInMethods,
  type SocialProvider,
  type User,
} from './auth.js';
export {
  creationOptions,
  credentialJson,
  decodeBase64Url,
  encodeBase64Url,
  requestOptions,
  type Passkey,
  type PasskeyCredentials,
  type PasskeySignInOptions,
  type PasskeySignInResult,
} from './passkeys.js';
export { type DataExport } from './account.js';
export { LatchkeyError, Wire, type TokenStore, type WireOptions } from './fapi.js';
export { SyncEngine, type OutboxOp, type RejectedOp, type SyncOptions, type SyncRecord, type SyncState, type SyncStatus } from './sync.js';
export { bannerText } from './status.js';
export {
  clerkTokenSource,
  createTokenSource,
  type ClerkLike,
  type SettableTokenSource,
  type TokenSource,
  type TokenSourceState,
} from './token-source.js';
