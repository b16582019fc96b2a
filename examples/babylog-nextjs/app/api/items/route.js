import { auth } from '@clerk/nextjs/server';
import { addItem, clearItems, itemsOf } from './store';

// Scoped by the active family when there is one, else by the user.
const owner = ({ userId, orgId }) => orgId ?? userId;

export async function GET() {
  const a = await auth();
  if (!a.userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  return Response.json({ items: itemsOf(owner(a)) });
}

export async function POST(req) {
  const a = await auth();
  if (!a.userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  const { name } = await req.json();
  return Response.json({ ...addItem(owner(a), name), userId: a.userId, orgId: a.orgId ?? null }, { status: 201 });
}

export async function DELETE() {
  const a = await auth();
  if (!a.userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (!a.has({ role: 'org:admin' })) return Response.json({ error: 'Forbidden' }, { status: 403 });
  clearItems(owner(a));
  return Response.json({ success: true });
}
