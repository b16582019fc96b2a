import { ClerkProvider, Show, UserButton } from '@clerk/nextjs';

export const metadata = { title: 'Items — @clerk/nextjs on latchkey' };

export default function RootLayout({ children }) {
  return (
    <ClerkProvider>
      <html lang="en">
        <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem' }}>
          <header style={{ display: 'flex', gap: '1rem', alignItems: 'center' }}>
            <a href="/">Home</a>
            <a href="/dashboard">Dashboard</a>
            <Show when="signed-out">
              <a href="/sign-in">Sign in</a>
            </Show>
            <Show when="signed-in">
              <UserButton />
            </Show>
          </header>
          {children}
        </body>
      </html>
    </ClerkProvider>
  );
}
