import { auth } from '@clerk/nextjs/server';

export default function Home() {
  const { userId } = auth(); // synchronous in @clerk/nextjs 5
  return (
    <main>
      <h1>Items</h1>
      <p id="home-user">{userId ? `signed in as ${userId}` : 'signed out'}</p>
    </main>
  );
}
