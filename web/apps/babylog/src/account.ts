// "Your data" (docs/account-data.md): a signed-in parent downloads everything latchkey holds
// about them as a JSON file, or deletes their account after typing DELETE and their password.
// latchkey-js clears this device's database once the account is gone, so nothing of the
// person stays behind on it.

import { LatchkeyError, type Auth } from 'latchkey-js';
import { $ } from './dom.js';

const REFUSALS: Record<string, string> = {
  form_password_incorrect: 'That password is not right. Nothing was deleted.',
  organization_minimum_permissions_needed:
    'You are the only admin of your family: make your partner an admin (or delete the family) first. Nothing was deleted.',
  delete_self_not_enabled: 'Deleting accounts is turned off here: ask the people who run this BabyLog.',
  session_reverification_required: 'Please sign in again, then delete.',
};

/** A line in the card, or (`'account-message'`) at the top, where it shows once the card is gone. */
function note(text: string, kind: 'error' | 'info', where = 'data-message'): void {
  const p = $(where);
  p.textContent = text;
  p.dataset.kind = kind;
}

/** Shows the card only to a signed-in parent. */
export function renderAccountData(auth: Auth): void {
  $('your-data').hidden = auth.user === null;
}

/** Wires the download button and the deletion form. */
export function wireAccountData(auth: Auth): void {
  $('download-data').addEventListener('click', async () => {
    const button = $<HTMLButtonElement>('download-data');
    button.disabled = true;
    try {
      const { blob } = await auth.downloadMyData();
      const link = Object.assign(document.createElement('a'), {
        href: URL.createObjectURL(blob),
        download: `babylog-data-${new Date().toISOString().slice(0, 10)}.json`,
      });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      note('Your data was downloaded.', 'info');
    } catch (e) {
      note(`Could not download your data: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      button.disabled = false;
    }
  });

  const form = $<HTMLFormElement>('delete-account');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if (data.get('confirm') !== 'DELETE') return note('Type DELETE to confirm.', 'error');
    const submit = form.querySelector('button')!;
    submit.disabled = true;
    try {
      await auth.deleteAccount({ password: String(data.get('password') ?? '') });
      form.reset();
      localStorage.removeItem('babylog:baby');
      localStorage.removeItem('babylog:who');
      note('', 'info');
      note('Your account and everything on this device are deleted.', 'info', 'account-message');
    } catch (e) {
      const code = e instanceof LatchkeyError ? e.code : '';
      note(REFUSALS[code] ?? `Could not delete your account: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      submit.disabled = false;
    }
  });
}
