// The app's own data, in memory: every read and write is scoped by the caller's user id.
const itemsByUser = new Map();

export const itemsOf = (userId) => itemsByUser.get(userId) ?? [];
export function addItem(userId, name) {
  const item = { id: itemsOf(userId).length + 1, name, userId };
  itemsByUser.set(userId, [...itemsOf(userId), item]);
  return item;
}
export function clearItems(userId) {
  itemsByUser.delete(userId);
}
