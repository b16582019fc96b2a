import { auth } from '@clerk/nextjs/server';

export default async function Home() {
  const { userId } = await auth();
  return (
    <main>
      <h1>Items</h1>
      <p id="home-user">{userId ? `signed in as ${userId}` : 'signed out'}</p>
    </main>
  );
}
