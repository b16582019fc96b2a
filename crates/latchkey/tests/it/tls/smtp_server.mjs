// A real SMTP server (nodemailer's smtp-server, from npm) for the TLS tests, on 127.0.0.1.
// Environment: SMTP_MODE = starttls | implicit | plain (plain: STARTTLS not offered),
// SMTP_CERT / SMTP_KEY (PEM files), SMTP_USER / SMTP_PASS (AUTH required when set).
// Prints its port on the first line, then one JSON line per message received:
// { user, secure, from, to, data }.
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

const mode = process.env.SMTP_MODE ?? 'starttls';
const user = process.env.SMTP_USER;
const server = new SMTPServer({
  secure: mode === 'implicit',
  hideSTARTTLS: mode === 'plain',
  key: mode === 'plain' ? undefined : readFileSync(process.env.SMTP_KEY),
  cert: mode === 'plain' ? undefined : readFileSync(process.env.SMTP_CERT),
  authOptional: !user,
  // Credentials are only taken over TLS (smtp-server's default), as a real provider does.
  allowInsecureAuth: false,
  authMethods: ['PLAIN', 'LOGIN'],
  disabledCommands: mode === 'plain' ? ['STARTTLS'] : [],
  logger: false,
  onAuth(auth, _session, done) {
    if (auth.username === user && auth.password === process.env.SMTP_PASS) return done(null, { user: auth.username });
    return done(new Error('Invalid username or password'));
  },
  onData(stream, session, done) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      console.log(JSON.stringify({
        user: session.user ?? null,
        secure: session.secure,
        from: session.envelope.mailFrom && session.envelope.mailFrom.address,
        to: session.envelope.rcptTo.map((r) => r.address),
        data: Buffer.concat(chunks).toString('utf8'),
      }));
      done();
    });
  },
});
server.listen(0, '127.0.0.1', () => console.log(server.server.address().port));
// Stops with the test: when its standard input closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
