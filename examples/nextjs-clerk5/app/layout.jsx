import { ClerkProvider, SignedIn, SignedOut, UserButton } from '@clerk/nextjs';

export const metadata = { title: 'Items — @clerk/nextjs 5 on latchkey' };

export default function RootLayout({ children }) {
  return (
    <ClerkProvider>
      <html lang="en">
        <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem' }}>
          <header style={{ display: 'flex', gap: '1rem', alignItems: 'center' }}>
            <a href="/">Home</a>
            <a href="/dashboard">Dashboard</a>
            <SignedOut>
              <a href="/sign-in">Sign in</a>
            </SignedOut>
            <SignedIn>
              <UserButton />
            </SignedIn>
          </header>
          {children}
        </body>
      </html>
    </ClerkProvider>
  );
}
