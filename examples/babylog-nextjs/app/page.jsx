import BabyLog from './babylog';

// Everything user-specific is client-side (IndexedDB, Clerk), so the service worker's cached
// copy of this page works offline for anyone.
export default function Home() {
  return <BabyLog />;
}
