// The hosted pages' copy buttons: a <button data-copy="ID" hidden> is shown, and copies the
// text of the element #ID, where the browser offers a clipboard. The pages work without it.
for (const button of document.querySelectorAll('button[data-copy]')) {
  const target = document.getElementById(button.dataset.copy);
  if (!target || !navigator.clipboard) continue;
  const label = button.textContent;
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(`${target.innerText.trim()}\n`);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Could not copy: select the codes instead';
    }
    setTimeout(() => (button.textContent = label), 4000);
  });
}
