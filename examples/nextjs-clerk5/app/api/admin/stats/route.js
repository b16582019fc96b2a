import { auth } from '@clerk/nextjs/server';

// auth().protect() as @clerk/nextjs 5 writes it: a caller without the role gets 404.
export async function GET() {
  const { orgId, orgRole } = auth().protect({ role: 'org:admin' });
  return Response.json({ orgId, orgRole });
}
