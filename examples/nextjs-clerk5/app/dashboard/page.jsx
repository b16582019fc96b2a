import { auth, currentUser } from '@clerk/nextjs/server';

// Seed 001's server component: what it shows comes from the session cookie the middleware
// verified (after a handshake when the cookie had expired).
export const dynamic = 'force-dynamic';

export default async function DashboardPage() {
  const { userId } = auth();
  if (!userId) return <div>Unauthorized</div>;
  const user = await currentUser();
  return (
    <main>
      <h1>Dashboard</h1>
      <p id="server-user">
        {userId} {user?.primaryEmailAddress?.emailAddress}
      </p>
    </main>
  );
}
