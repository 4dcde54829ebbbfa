// The demo site's OpenID Connect provider: the npm package oidc-provider (OpenID-certified),
// with the site's users, a login that asks for the password and, for users enrolled in it,
// a TOTP code (RFC 6238), and says which it checked in the ID token's `amr` claim
// (RFC 8176: "pwd", "otp"). Started by `hpchub site up` (src/hpchub/site/oidc.py), which
// writes the configuration this reads; never part of the hub itself.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {issuer, address, port, clients: [...], users_file, jwks: {keys: [...]}, cookie_keys: [...]}
// The users file ({name: {salt, password_scrypt, totp_secret?, disabled?}}) is read at every
// login and every token request, so that a user disabled there gets no new token at the
// next refresh, as at a centre's identity provider.

import { createHmac, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function users() {
  return JSON.parse(readFileSync(config.users_file, 'utf8'));
}

function activeUser(name) {
  const user = Object.hasOwn(users(), name) ? users()[name] : undefined;
  return user && !user.disabled ? user : undefined;
}

// ----- password and one-time code ------------------------------------------------------
function passwordMatches(user, password) {
  const expected = Buffer.from(user.password_scrypt, 'hex');
  const given = scryptSync(password, Buffer.from(user.salt, 'hex'), expected.length, { N: 16384, r: 8, p: 1 });
  return timingSafeEqual(expected, given);
}

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(ch);
    if (value < 0) throw new Error('bad base32');
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, counter) {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const digest = createHmac('sha1', base32Decode(secret)).update(message).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// The time step each user last logged in with: a code is good once (as DISALLOW_REUSE in
// pam_google_authenticator), so a code seen over someone's shoulder cannot be replayed.
const lastStep = new Map();

function codeMatches(name, user, code) {
  const now = Math.floor(Date.now() / 1000 / 30);
  for (const step of [now - 1, now, now + 1]) {
    if (step > (lastStep.get(name) ?? -1) && /^[0-9]{6}$/.test(code) && totp(user.totp_secret, step) === code) {
      lastStep.set(name, step);
      return true;
    }
  }
  return false;
}

// ----- the provider --------------------------------------------------------------------
const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: config.cookie_keys },
  // amr with the openid scope: every ID token says how its user signed in.
  claims: { openid: ['sub', 'amr'], profile: ['preferred_username', 'name'] },
  // The profile claims in the ID token too (as Keycloak does), not only at userinfo: the CA
  // service reads the username from the ID token the hub shows it.
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'offline_access'],
  features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
  ttl: { AccessToken: config.token_ttl ?? 600, IdToken: config.token_ttl ?? 600, RefreshToken: 7 * 86400,
         Session: 7 * 86400, Grant: 7 * 86400, Interaction: 600 },
  // A first-party client of the site: refresh tokens without the offline_access consent dance.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async findAccount(ctx, id) {
    if (!activeUser(id)) return undefined;  // disabled: no token, no refresh, no userinfo
    return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, name: id }) };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // The site's own clients need no consent screen: grant what they ask for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile offline_access');
    grant.addOIDCClaims(['preferred_username', 'name']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, message, username = '') {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - hpchub demo site</title>
<style>body{font-family:sans-serif;max-width:24em;margin:4em auto}label{display:block;margin:.8em 0 .2em}
input{width:100%;padding:.4em}button{margin-top:1em;padding:.5em 1.5em}.error{color:#a00}</style></head><body>
<h1>Sign in</h1><p>The demo site's identity provider. Give your password and, if you have enrolled
an authenticator app, its current 6-digit code.</p>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" value="${escapeHtml(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<label for="otp">One-time code</label><input id="otp" name="otp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6">
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'This sign-in is no longer current; start again.');
  if (details.prompt.name === 'consent') {
    // Granted by loadExistingGrant; only reached when a client asks beyond it.
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid, ''));
  if (req.method !== 'POST' || action !== 'login') return send(res, 405, 'Method not allowed');
  const form = await readForm(req);
  const name = form.get('username') ?? '';
  const user = activeUser(name);
  // One message for every failure: it does not tell which part was wrong.
  const refuse = () => send(res, 200, loginPage(uid, 'The username, password or one-time code is wrong.', name));
  if (!user || !passwordMatches(user, form.get('password') ?? '')) return refuse();
  const amr = ['pwd'];
  if (user.totp_secret) {
    if (!codeMatches(name, user, (form.get('otp') ?? '').trim())) return refuse();
    amr.push('otp', 'mfa');
  }
  console.log(`login of ${name} (amr ${amr.join(',')})`);
  return provider.interactionFinished(req, res, { login: { accountId: name, amr } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/.exec(new URL(req.url, 'http://x').pathname);
  if (!match) return callback(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    console.error(`interaction ${req.url}: ${err}`);
    if (!res.headersSent) send(res, 400, 'This sign-in has expired or is not valid; go back to the hub and start again.');
  }
});
server.listen(config.port, config.address, () => console.log(`oidc provider ${config.issuer} listening`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
