// Next.js 16's middleware: no login wall (the log works signed out); clerkMiddleware only makes
// auth() work in route handlers and serves Clerk's Frontend API (and sync) at /__clerk.
import { clerkMiddleware } from '@clerk/nextjs/server';

export default clerkMiddleware(async () => {}, { frontendApiProxy: { enabled: true } });

export const config = {
  matcher: [
    '/((?!_next|clerk-js|clerk-ui|sw.js|[^?]*\\.(?:html?|css|js(?!on)|jpe?g|webp|png|gif|svg|ttf|woff2?|ico|webmanifest)).*)',
    '/(api|trpc)(.*)',
    '/__clerk(.*)',
  ],
};
