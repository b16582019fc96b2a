import type { SyncStatus } from './sync.js';

/**
 * The banner an app shows for a sync status (the BabyLog seed's words), or `null` when
 * everything is synced.
 */
export function bannerText(status: SyncStatus): string | null {
  switch (status.state) {
    case 'offline':
      return 'Offline mode — changes saved locally';
    case 'signed-out':
      return 'Sign in to sync';
    case 'pending':
      return `Sync (${status.pending} ${status.pending === 1 ? 'change' : 'changes'})`;
    case 'syncing':
      return 'Syncing…';
    case 'error':
      return 'Sync failed — retry';
    case 'up-to-date':
      return null;
  }
}
