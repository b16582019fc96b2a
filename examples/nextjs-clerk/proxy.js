// Next.js 16 calls this file `proxy.js` (`middleware.ts` before 16); the code is the seeds'.
import { clerkMiddleware, createRouteMatcher } from '@clerk/nextjs/server';

const isPublicRoute = createRouteMatcher([
  '/',
  '/sign-in(.*)',
  '/sign-up(.*)',
  '/api/public(.*)',
  // These route handlers answer 401 and 403 themselves (the seeds' defence in depth).
  '/api/items(.*)',
  '/api/orgs(.*)',
  '/api/invoices(.*)',
  '/api/sensitive(.*)',
]);
const isAdminRoute = createRouteMatcher(['/api/admin(.*)']);

export default clerkMiddleware(
  async (auth, req) => {
    if (isAdminRoute(req)) await auth.protect({ role: 'org:admin' });
    else if (!isPublicRoute(req)) await auth.protect();
  },
  // The one line a self-hosted latchkey needs: serve Clerk's Frontend API at /__clerk,
  // forwarded to CLERK_FAPI_URL.
  { frontendApiProxy: { enabled: true } },
);

export const config = {
  matcher: [
    '/((?!_next|clerk-js|clerk-ui|[^?]*\\.(?:html?|css|js(?!on)|jpe?g|webp|png|gif|svg|ttf|woff2?|ico|csv|docx?|xlsx?|zip|webmanifest)).*)',
    '/(api|trpc)(.*)',
    '/__clerk(.*)',
  ],
};
