import { auth } from '@clerk/nextjs/server';

// Public for the middleware: the handler answers 401 and 403 itself, scoped by the active
// organization (seed 001's org-scoped route).
export async function GET(req, { params }) {
  const { userId, orgId } = auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (orgId !== params.orgId) return Response.json({ error: 'Forbidden' }, { status: 403 });
  return Response.json({ organizationId: orgId, data: [] });
}
