import { auth, reverificationErrorResponse } from '@clerk/nextjs/server';

// A sensitive action: it needs the session's second factor (or, for a user without one, the
// first) proved within the last 10 minutes, Clerk's `strict`. The 403 carries Clerk's hint
// (`clerk_error`), so `useReverification` on the page can ask for the check and call again.
// (`auth.protect({ reverification: 'strict' })` would answer 404, which no hook can act on.)
export async function POST() {
  const { userId, has } = await auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (!has({ reverification: 'strict' })) return reverificationErrorResponse('strict');
  return Response.json({ ok: true });
}
