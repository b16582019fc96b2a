// A software WebAuthn authenticator for latchkey-js's tests, standing in for
// `navigator.credentials` (mirrors crates/latchkey/tests/it/soft_authenticator.rs): ES256 keys
// from node:crypto, "none" attestation, discoverable credentials that keep the user handle, a
// signature counter per credential. It answers with objects shaped like the browser's
// PublicKeyCredential (ArrayBuffers), so latchkey-js's own encoding is what is tested.
import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';

const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const sha256 = (bytes) => createHash('sha256').update(bytes).digest();
const buffer = (bytes) => Uint8Array.from(bytes).buffer;

function cborHead(major, len) {
  const m = major << 5;
  if (len < 24) return Buffer.from([m | len]);
  if (len < 256) return Buffer.from([m | 24, len]);
  return Buffer.from([m | 25, len >> 8, len & 0xff]);
}
const cborText = (s) => Buffer.concat([cborHead(3, Buffer.byteLength(s)), Buffer.from(s)]);
const cborBytes = (b) => Buffer.concat([cborHead(2, b.length), b]);

const notAllowed = (why) => new DOMException(why, 'NotAllowedError');

export class SoftAuthenticator {
  /** `origin`: the page the "browser" shows; `rpId`: the relying party it accepts. */
  constructor(origin, rpId) {
    this.origin = origin;
    this.rpId = rpId;
    this.credentials = [];
    /** Every request: `{ op, mediation }`. */
    this.requests = [];
    /** When set, `get` waits for its signal instead of answering (a person who never picks). */
    this.hold = false;
    /** When set, `create` is refused as a person closing the dialog would. */
    this.refuseCreate = false;
  }

  clientData(type, challenge) {
    return Buffer.from(JSON.stringify({ type, challenge: b64url(new Uint8Array(challenge)), origin: this.origin, crossOrigin: false }));
  }

  authDataHead(flags, counter) {
    const head = Buffer.alloc(37);
    sha256(this.rpId).copy(head, 0);
    head[32] = flags;
    head.writeUInt32BE(counter, 33);
    return head;
  }

  async create({ publicKey }) {
    this.requests.push({ op: 'create', mediation: 'optional' });
    if (this.refuseCreate) throw notAllowed('The operation either timed out or was not allowed.');
    assertRp(publicKey.rp.id, this.rpId);
    const excluded = (publicKey.excludeCredentials ?? []).map((c) => b64url(new Uint8Array(c.id)));
    if (this.credentials.some((c) => excluded.includes(c.id))) throw new DOMException('already registered', 'InvalidStateError');
    const { privateKey, publicKey: pub } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = pub.export({ format: 'jwk' });
    const cose = Buffer.concat([
      Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]),
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from([0x22, 0x58, 0x20]),
      Buffer.from(jwk.y, 'base64url'),
    ]);
    const rawId = randomBytes(32);
    const idLength = Buffer.from([rawId.length >> 8, rawId.length & 0xff]);
    const authData = Buffer.concat([this.authDataHead(UP | UV | AT, 0), Buffer.alloc(16), idLength, rawId, cose]);
    const attestation = Buffer.concat([
      Buffer.from([0xa3]),
      cborText('fmt'),
      cborText('none'),
      cborText('attStmt'),
      Buffer.from([0xa0]),
      cborText('authData'),
      cborBytes(authData),
    ]);
    const id = b64url(rawId);
    this.credentials.push({ id, rawId, privateKey, userHandle: Buffer.from(new Uint8Array(publicKey.user.id)), counter: 0 });
    return {
      type: 'public-key',
      id,
      rawId: buffer(rawId),
      authenticatorAttachment: 'platform',
      response: {
        clientDataJSON: buffer(this.clientData('webauthn.create', publicKey.challenge)),
        attestationObject: buffer(attestation),
        getTransports: () => ['internal'],
      },
    };
  }

  async get({ publicKey, mediation, signal }) {
    this.requests.push({ op: 'get', mediation: mediation ?? 'optional' });
    if (this.hold) {
      await new Promise((_, fail) => {
        const stop = () => fail(new DOMException('The operation was aborted.', 'AbortError'));
        if (signal?.aborted) stop();
        signal?.addEventListener('abort', stop, { once: true });
      });
    }
    assertRp(publicKey.rpId, this.rpId);
    const allowed = (publicKey.allowCredentials ?? []).map((c) => b64url(new Uint8Array(c.id)));
    const credential = this.credentials.find((c) => allowed.length === 0 || allowed.includes(c.id));
    if (!credential) throw notAllowed('The operation either timed out or was not allowed.');
    credential.counter += 1;
    const authData = this.authDataHead(UP | UV, credential.counter);
    const clientData = this.clientData('webauthn.get', publicKey.challenge);
    const signature = createSign('SHA256').update(Buffer.concat([authData, sha256(clientData)])).sign(credential.privateKey);
    return {
      type: 'public-key',
      id: credential.id,
      rawId: buffer(credential.rawId),
      authenticatorAttachment: 'platform',
      response: {
        clientDataJSON: buffer(clientData),
        authenticatorData: buffer(authData),
        signature: buffer(signature),
        userHandle: buffer(credential.userHandle),
      },
    };
  }
}

function assertRp(asked, mine) {
  if (asked !== mine) throw new DOMException(`relying party ${asked} is not ${mine}`, 'SecurityError');
}
