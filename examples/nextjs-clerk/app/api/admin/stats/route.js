import { auth } from '@clerk/nextjs/server';

// Reached only through `auth.protect({ role: 'org:admin' })` in proxy.js.
export async function GET() {
  const { orgId, orgRole } = await auth();
  return Response.json({ orgId, orgRole });
}
