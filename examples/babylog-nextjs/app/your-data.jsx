'use client';
// "Your data" (docs/account-data.md): download what latchkey holds about the signed-in parent
// (GET /v1/me/data_export through Clerk's same-origin proxy, the page's own Clerk cookie), or
// delete the account: Clerk's user.delete() (its reverification modal when the last check is
// old), then this device's database is emptied and the device signed out.
import { useClerk, useReverification, useUser } from '@clerk/nextjs';
import { useState } from 'react';

export default function YourData({ engine }) {
  const { user } = useUser();
  const clerk = useClerk();
  const [message, setMessage] = useState(null);
  const deleteUser = useReverification(() => user.delete());
  if (!user) return null;

  const download = async () => {
    const res = await fetch('/__clerk/v1/me/data_export', { credentials: 'same-origin' });
    if (!res.ok) return setMessage({ kind: 'error', text: `Could not download your data (${res.status}).` });
    const link = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(await res.blob()),
      download: `babylog-data-${new Date().toISOString().slice(0, 10)}.json`,
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    setMessage({ kind: 'info', text: 'Your data was downloaded.' });
  };

  const remove = async (event) => {
    event.preventDefault();
    if (event.currentTarget.confirm.value !== 'DELETE') return setMessage({ kind: 'error', text: 'Type DELETE to confirm.' });
    try {
      await deleteUser();
    } catch (e) {
      const error = e?.errors?.[0];
      return setMessage({ kind: 'error', text: error?.longMessage ?? error?.message ?? 'Could not delete your account.' });
    }
    await engine.current.clearLocalData();
    localStorage.removeItem('babylog:baby');
    setMessage({ kind: 'info', text: 'Your account and everything on this device are deleted.' });
    await clerk.signOut({ redirectUrl: '/' });
  };

  return (
    <section id="your-data" aria-labelledby="your-data-title">
      <h2 id="your-data-title">Your data</h2>
      <button id="download-data" type="button" onClick={download}>Download my data</button>
      <form id="delete-account" onSubmit={remove} style={{ display: 'flex', gap: '.5rem', marginTop: '.5rem' }}>
        <label htmlFor="delete-confirm">Type DELETE</label>
        <input id="delete-confirm" name="confirm" required autoComplete="off" />
        <button type="submit">Delete my account</button>
      </form>
      <p id="data-message" role="status" data-kind={message?.kind ?? ''}>{message?.text ?? ''}</p>
    </section>
  );
}
