// The seeds' middleware on @clerk/nextjs 5: authMiddleware with publicRoutes (deprecated in 5,
// still what many apps run). Signed out, a protected page redirects to sign-in and a protected
// API route answers 401; the route handlers answer 403 themselves.
import { authMiddleware } from '@clerk/nextjs/server';
import { NextResponse } from 'next/server';

const clerk = authMiddleware({
  publicRoutes: ['/', '/api/public(.*)', '/api/orgs(.*)'],
});

// The app serves Clerk's Frontend API at /__clerk and forwards it to latchkey, as Clerk's v5
// documentation has apps do it for a proxy: the proxy's public URL and the secret key prove to
// latchkey that this origin is the app's (docs/clerk-sdks.md, "Older SDK generations").
function frontendApiProxy(req) {
  const target = new URL(process.env.CLERK_FAPI_URL);
  const url = new URL(req.nextUrl.pathname.replace(/^\/__clerk/, '') + req.nextUrl.search, target);
  // The secret key goes to latchkey and nowhere else, whatever the path looks like.
  if (url.origin !== target.origin) return new NextResponse(null, { status: 400 });
  const headers = new Headers(req.headers);
  // The proxy's public URL as configured (absolute: the app's https address), never from
  // request headers a caller could set.
  headers.set('Clerk-Proxy-Url', process.env.NEXT_PUBLIC_CLERK_PROXY_URL);
  headers.set('Clerk-Secret-Key', process.env.CLERK_SECRET_KEY);
  // The browser's address only when the platform knows it (`req.ip`); a header the browser sent
  // would let it pick its own address for latchkey's rate limits.
  if (req.ip) headers.set('X-Forwarded-For', req.ip);
  else headers.delete('X-Forwarded-For');
  return NextResponse.rewrite(url, { request: { headers } });
}

export default function middleware(req, evt) {
  if (req.nextUrl.pathname.startsWith('/__clerk/')) return frontendApiProxy(req);
  return clerk(req, evt);
}

export const config = {
  matcher: ['/((?!.+\\.[\\w]+$|_next|clerk-js).*)', '/', '/(api|trpc)(.*)', '/__clerk/(.*)'],
};
