import { auth } from '@clerk/nextjs/server';
import { addItem, clearItems, itemsOf } from './store';

export async function GET() {
  const { userId } = await auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  return Response.json({ items: itemsOf(userId) });
}

export async function POST(req) {
  const { userId } = await auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  const { name } = await req.json();
  return Response.json(addItem(userId, name), { status: 201 });
}

export async function DELETE() {
  const { userId, has } = await auth();
  if (!userId) return Response.json({ error: 'Unauthorized' }, { status: 401 });
  if (!has({ role: 'org:admin' })) return Response.json({ error: 'Forbidden' }, { status: 403 });
  clearItems(userId);
  return Response.json({ success: true });
}
