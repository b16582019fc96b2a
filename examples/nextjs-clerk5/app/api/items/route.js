import { auth } from '@clerk/nextjs/server';
import { NextResponse } from 'next/server';

// Seed 001's route handler. The middleware already answers 401 when signed out; the handler
// checks again (defence in depth) and scopes by the caller.
const itemsByUser = new Map();

export async function GET() {
  const { userId } = auth();
  if (!userId) return new NextResponse('Unauthorized', { status: 401 });
  return NextResponse.json({ items: itemsByUser.get(userId) ?? [] });
}

export async function POST(req) {
  const { userId } = auth();
  if (!userId) return new NextResponse('Unauthorized', { status: 401 });
  const { name } = await req.json();
  const item = { id: (itemsByUser.get(userId) ?? []).length + 1, name, userId };
  itemsByUser.set(userId, [...(itemsByUser.get(userId) ?? []), item]);
  return NextResponse.json(item, { status: 201 });
}

export async function DELETE() {
  const { userId, has } = auth();
  if (!userId) return new NextResponse('Unauthorized', { status: 401 });
  if (!has({ role: 'org:admin' })) return NextResponse.json({ error: 'Forbidden' }, { status: 403 });
  itemsByUser.delete(userId);
  return NextResponse.json({ success: true });
}
