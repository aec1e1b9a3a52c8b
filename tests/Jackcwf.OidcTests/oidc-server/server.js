// A real OpenID Connect provider (the certified oidc-provider) for the sign-in tests, on loopback only.
//
//   node server.js <config.json>
//
// config.json: { "port": 25001, "clients": [ { "client_id", "client_secret", "redirect_uris": [...] } ],
//                "accounts": [ { "login", "password", "sub", "email", "email_verified", "name" } ] }
//
// The sign-in and consent pages are small HTML forms (like a real provider's), so a test drives the
// flow as a browser would: GET the page, POST the form, follow the redirects. The line
// "oidc-server listening on <issuer>" on stdout says it is ready.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.js <config.json>');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = config.accounts ?? [];

// A fresh signing key per run: nothing secret is kept in the repository.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-key' };

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // ASP.NET Core's OpenID Connect handler sends the secret in the token request body.
    token_endpoint_auth_method: 'client_secret_post',
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  async findAccount(_ctx, sub) {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = { sub, name: account.name ?? account.login };
        if (account.email !== undefined) {
          claims.email = account.email;
          claims.email_verified = account.email_verified === true;
        }
        return claims;
      },
    };
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

function loginForm(res, uid, status = 200, error = '') {
  page(res, status, 'Sign in', `${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<input name="login" autocomplete="username"><input name="password" type="password"><button type="submit">Sign in</button>
</form><a href="/interaction/${escape(uid)}/abort">Cancel</a>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    page(res, 400, 'Unknown interaction', '');
    return;
  }
  const { prompt, params, session } = details;
  if (req.method === 'GET' && action === '') {
    if (prompt.name === 'login') {
      loginForm(res, uid);
    } else {
      page(res, 200, 'Authorize', `<p>${escape(params.client_id)} asks for: ${escape(params.scope)}</p>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button type="submit">Allow</button></form>
<a href="/interaction/${escape(uid)}/abort">Deny</a>`);
    }
    return;
  }
  if (req.method === 'GET' && action === 'abort') {
    await provider.interactionFinished(req, res,
      { error: 'access_denied', error_description: 'The user cancelled the sign-in.' }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const account = accounts.find((a) => a.login === form.get('login') && a.password === form.get('password'));
    if (!account) {
      loginForm(res, uid, 401, 'Wrong login or password.');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  page(res, 400, 'Unexpected step', `<p>${escape(req.method)} ${escape(action)} during ${escape(prompt.name)}</p>`);
}

const handleProtocol = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/([a-z]+))?(?:\?.*)?$/.exec(req.url ?? '');
  if (!match) {
    handleProtocol(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1], match[2] ?? '');
  } catch (err) {
    // An expired or unknown interaction cookie is the user's problem, not a crash of the provider.
    console.error(`interaction failed: ${err?.message ?? err}`);
    if (!res.headersSent) page(res, 400, 'Sign-in failed', `<p>${escape(err?.message ?? 'error')}</p>`);
  }
});

provider.on('server_error', (_ctx, err) => console.error(`server_error: ${err?.stack ?? err}`));
// What the client really asked for (also when it pushed the request first, RFC 9126), for the tests to check.
provider.on('authorization.success', (ctx) => {
  const { params } = ctx.oidc;
  const asked = {};
  for (const name of ['client_id', 'response_type', 'response_mode', 'scope', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'nonce']) {
    if (params[name] !== undefined) asked[name] = params[name];
  }
  console.log(`authorization granted ${JSON.stringify({ account: ctx.oidc.session?.accountId, params: asked })}`);
});
server.listen(config.port, '127.0.0.1', () => console.log(`oidc-server listening on ${issuer}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
