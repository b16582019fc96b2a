import { auth } from '@clerk/nextjs/server';

export async function POST(req) {
  const { userId, has } = await auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (!has({ permission: 'org:invoices:create' })) return Response.json({ error: 'Forbidden' }, { status: 403 });
  const body = await req.json();
  return Response.json({ ...body, createdBy: userId }, { status: 201 });
}
