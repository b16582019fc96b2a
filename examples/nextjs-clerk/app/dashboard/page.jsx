import { auth, currentUser } from '@clerk/nextjs/server';

// Rendered on the server for every request: what it shows comes from the session cookie the
// middleware verified (after a handshake when the cookie had expired).
export const dynamic = 'force-dynamic';

export default async function Dashboard() {
  const { userId, orgId } = await auth();
  const user = await currentUser();
  return (
    <main>
      <h1>Dashboard</h1>
      <p id="server-user">
        {userId} {user?.primaryEmailAddress?.emailAddress}
      </p>
      <p id="server-org">{orgId ?? 'personal account'}</p>
    </main>
  );
}
