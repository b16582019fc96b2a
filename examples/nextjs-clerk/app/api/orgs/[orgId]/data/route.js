import { auth } from '@clerk/nextjs/server';

export async function GET(req, { params }) {
  const { userId, orgId } = await auth();
  const { orgId: requestedOrgId } = await params;
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (orgId !== requestedOrgId) return Response.json({ error: 'Forbidden' }, { status: 403 });
  return Response.json({ organizationId: orgId, data: [] });
}
