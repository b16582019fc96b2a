// latchkey's webhooks checked by the receivers' own libraries: svix, standardwebhooks and
// @clerk/backend's verifyWebhook, against deliveries from a freshly started latchkey.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createClerkClient } from '@clerk/backend';
import { verifyWebhook } from '@clerk/backend/webhooks';
import { Webhook as SvixWebhook } from 'svix';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { startLatchkey } from './latchkey.mjs';

let lk;
let clerk;
let receiver;
const received = [];
let waiters = [];

function nextDelivery(predicate) {
  const found = received.find(predicate);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no delivery within 30 s')), 30_000);
    waiters.push({ predicate, resolve: (m) => (clearTimeout(timer), resolve(m)) });
  });
}

// Reads a Backend API resource until `done` says it has settled (up to 30 s), and returns it.
async function settled(path, done) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await bapi(path);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (done(res)) return res;
    if (Date.now() > deadline) assert.fail(`${path} did not settle within 30 s: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function bapi(path, init = {}) {
  const res = await fetch(`${lk.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  return { status: res.status, body: await res.json() };
}

before(async () => {
  lk = await startLatchkey();
  clerk = createClerkClient({ secretKey: lk.secretKey, apiUrl: lk.url, publishableKey: lk.publishableKey });
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const m = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(m);
      waiters = waiters.filter((w) => (w.predicate(m) ? (w.resolve(m), false) : true));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
});

after(async () => {
  receiver?.close();
  await lk?.stop();
});

const typeOf = (m) => JSON.parse(m.body).type;

describe('webhook signatures', () => {
  test('the Standard Webhooks test vector', () => {
    const wh = new StandardWebhook('whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD');
    const body = '{"email":"test@example.com","username":"test_user"}';
    const sig = wh.sign('msg_27UH4WbU6Z5A5EzD8u03UvzRbpk', new Date(1649367553 * 1000), body);
    assert.equal(sig, 'v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=');
  });

  test('a user.created delivery verifies with svix, standardwebhooks and verifyWebhook', async () => {
    const { port } = receiver.address();
    const created = await bapi('/v1/webhooks/endpoints', {
      method: 'POST',
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/clerk`, events: ['user.created', 'user.updated'] }),
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const secret = created.body.secret;
    assert.match(secret, /^whsec_/);

    const user = await clerk.users.createUser({ emailAddress: ['hooked@example.com'], password: 'correct horse battery staple' });
    const m = await nextDelivery((d) => typeOf(d) === 'user.created' && JSON.parse(d.body).data.id === user.id);

    const svix = new SvixWebhook(secret).verify(m.body, {
      'svix-id': m.headers['svix-id'],
      'svix-timestamp': m.headers['svix-timestamp'],
      'svix-signature': m.headers['svix-signature'],
    });
    assert.equal(svix.type, 'user.created');
    const std = new StandardWebhook(secret).verify(m.body, {
      'webhook-id': m.headers['webhook-id'],
      'webhook-timestamp': m.headers['webhook-timestamp'],
      'webhook-signature': m.headers['webhook-signature'],
    });
    assert.equal(std.data.id, user.id);

    const request = () =>
      new Request('http://app.test/api/webhooks', { method: 'POST', headers: m.headers, body: m.body });
    const evt = await verifyWebhook(request(), { signingSecret: secret });
    assert.equal(evt.type, 'user.created');
    assert.equal(evt.object, 'event');
    assert.equal(evt.data.id, user.id);
    assert.equal(evt.data.email_addresses[0].email_address, 'hooked@example.com');
    assert.match(evt.instance_id, /^ins_/);

    // A changed byte, another secret, or a stale timestamp is refused by every library.
    const tampered = m.body.replace('hooked', 'hacked');
    assert.throws(() => new SvixWebhook(secret).verify(tampered, m.headers));
    assert.throws(() => new StandardWebhook(secret).verify(tampered, m.headers));
    await assert.rejects(
      verifyWebhook(new Request('http://app.test/', { method: 'POST', headers: m.headers, body: tampered }), {
        signingSecret: secret,
      }),
    );
    const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    assert.throws(() => new SvixWebhook(other).verify(m.body, m.headers));
    const stale = { ...m.headers, 'webhook-timestamp': String(Number(m.headers['webhook-timestamp']) - 301) };
    assert.throws(() => new StandardWebhook(secret).verify(m.body, stale));

    // After a rotation both secrets verify the same delivery (two signatures in the header).
    const rotated = await bapi(`/v1/webhooks/endpoints/${created.body.id}/secret/rotate`, { method: 'POST', body: '{}' });
    assert.equal(rotated.status, 200);
    const newSecret = rotated.body.secret;
    await clerk.users.updateUser(user.id, { firstName: 'Rotated' });
    const u = await nextDelivery((d) => typeOf(d) === 'user.updated');
    assert.equal(u.headers['svix-signature'].split(' ').length, 2);
    for (const s of [secret, newSecret]) {
      assert.equal(new SvixWebhook(s).verify(u.body, u.headers).data.first_name, 'Rotated');
      assert.equal((await verifyWebhook(new Request('http://app.test/', { method: 'POST', headers: u.headers, body: u.body }), { signingSecret: s })).type, 'user.updated');
    }

    // The deliveries are listed with their attempts. The receiver has both requests, but latchkey
    // records an attempt only once the answer is back: wait until neither is pending.
    const deliveries = `/v1/webhooks/endpoints/${created.body.id}/deliveries`;
    const list = await settled(deliveries, (l) => l.body.data.length >= 2 && l.body.data.every((d) => d.status !== 'pending'));
    assert.equal(list.body.data.length, 2, JSON.stringify(list.body));
    assert.ok(list.body.data.every((d) => d.status === 'succeeded' && d.attempts[0].status_code === 200), JSON.stringify(list.body));
  });
});
