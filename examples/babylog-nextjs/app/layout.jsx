import { ClerkProvider, OrganizationSwitcher, Show, UserButton } from '@clerk/nextjs';

export const metadata = { title: 'BabyLog', manifest: '/manifest.webmanifest' };
export const viewport = { themeColor: '#5b6ee1' };

export default function RootLayout({ children }) {
  return (
    <ClerkProvider>
      <html lang="en">
        <body style={{ fontFamily: 'system-ui, sans-serif', margin: '1rem', maxWidth: 640 }}>
          <header style={{ display: 'flex', gap: '1rem', alignItems: 'center' }}>
            <a href="/">BabyLog</a>
            <Show when="signed-out">
              <a id="sign-in" href="/sign-in">Sign in</a>
            </Show>
            <Show when="signed-in">
              {/* The family is an organization; a partner joins by invitation. */}
              <OrganizationSwitcher hidePersonal={false} />
              <UserButton />
            </Show>
          </header>
          {children}
        </body>
      </html>
    </ClerkProvider>
  );
}
