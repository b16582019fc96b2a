// Where the sync engine gets its session tokens: any sign-in library, not only latchkey-js's
// own `Auth`. The engine needs three things of it: a token (fresh on demand after a 401), who
// is signed in (local data belongs to one user), and a signal when that or the active
// organization changes (the live events cover other spaces then). docs/sync-protocol.md §12.

/** What the sync engine needs from whoever signs the user in. */
export interface TokenSource {
  /**
   * The session token for latchkey's sync API, `null` when nobody is signed in. With `force`,
   * a new one even if a cached one looks fresh (the server just answered 401). Rejects when the
   * network is down: the engine retries later and keeps the outbox.
   */
  getToken(options?: { force?: boolean }): Promise<string | null>;
  /** The signed-in user's id, `null` when signed out (or not known yet). */
  readonly userId: string | null;
  /** Calls `listener` on sign-in, sign-out, and a change of user or active organization. */
  onChange(listener: () => void): () => void;
  /**
   * Optional: calls `listener` when the signed-in person deleted their account from this
   * device; the sync engine then clears the local database (latchkey-js's `Auth` has it).
   */
  onAccountDeleted?(listener: () => Promise<void> | void): () => void;
}

/** What `createTokenSource().set()` takes: the values of React's `useAuth()`, for instance. */
export interface TokenSourceState {
  userId: string | null | undefined;
  orgId?: string | null;
  /** `useAuth().getToken` (its `skipCache` is asked for when the engine forces a refresh). */
  getToken: (options?: { skipCache?: boolean }) => Promise<string | null>;
}

/** A token source the app feeds (`set`), for hooks such as `@clerk/nextjs`'s `useAuth()`. */
export interface SettableTokenSource extends TokenSource {
  set(state: TokenSourceState): void;
}

/** The parts of Clerk's browser object (`window.Clerk`, `useClerk()`) a token source reads. */
export interface ClerkLike {
  session?: { getToken(options?: { skipCache?: boolean }): Promise<string | null> } | null;
  user?: { id: string } | null;
  organization?: { id: string } | null;
  addListener(callback: (resources: unknown) => void): () => void;
}

/**
 * A token source fed by the app:
 *
 * ```ts
 * const { isLoaded, userId, orgId, getToken } = useAuth();
 * const source = useMemo(() => createTokenSource(), []);
 * useEffect(() => { if (isLoaded) source.set({ userId, orgId, getToken }); }, [isLoaded, userId, orgId, getToken]);
 * ```
 *
 * Until the first `set`, nobody is signed in (local writes wait to be claimed). Listeners hear
 * only real changes of user or organization, not every re-render.
 */
export function createTokenSource(): SettableTokenSource {
  let state: TokenSourceState | null = null;
  const listeners = new Set<() => void>();
  const keyOf = (s: TokenSourceState | null) => `${s?.userId ?? ''}|${s?.userId ? (s.orgId ?? '') : ''}`;
  return {
    get userId() {
      return state?.userId ?? null;
    },
    async getToken(options = {}) {
      if (!state?.userId) return null;
      return state.getToken(options.force ? { skipCache: true } : undefined);
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(next) {
      const changed = keyOf(next) !== keyOf(state);
      state = next;
      if (changed) for (const l of [...listeners]) l();
    },
  };
}

/**
 * A token source on Clerk's browser SDK: `clerkTokenSource(window.Clerk)` after
 * `Clerk.load()`, or `clerkTokenSource(useClerk())`. Tokens come from
 * `Clerk.session.getToken()`; changes from `Clerk.addListener`, filtered to sign-in, sign-out,
 * another user or another organization (Clerk also emits on every token refresh).
 */
export function clerkTokenSource(clerk: ClerkLike): TokenSource {
  const keyOf = () => `${clerk.user?.id ?? ''}|${clerk.session ? (clerk.organization?.id ?? '') : ''}`;
  return {
    get userId() {
      return clerk.session ? (clerk.user?.id ?? null) : null;
    },
    async getToken(options = {}) {
      const session = clerk.session;
      if (!session) return null;
      return session.getToken(options.force ? { skipCache: true } : undefined);
    },
    onChange(listener) {
      let last = keyOf();
      return clerk.addListener(() => {
        const key = keyOf();
        if (key === last) return;
        last = key;
        listener();
      });
    },
  };
}
