// A test OpenID Connect identity provider for Warden's sign-in tests.
//
// It is the certified `oidc-provider` package (MIT licence, pinned in
// package.json) on a loopback port, with four fixed people in groups and a
// plain login page in place of the package's development interactions:
//
//   node provider.mjs --port N --config FILE
//
// FILE is JSON: {"clients": [{"client_id", "client_secret",
// "redirect_uris": [...], "token_endpoint_auth_method"?, ...}]}; any other
// client metadata oidc-provider knows (id_token_signed_response_alg,
// post_logout_redirect_uris, ...) is passed through. The issuer is
// http://127.0.0.1:N; discovery is at /.well-known/openid-configuration.
// When it listens it prints one line, `READY http://127.0.0.1:N`, to
// stdout; it logs each request to stderr and exits on SIGTERM or SIGINT.
//
// Rust tests start it through `crates/warden/tests/peers/oidc.rs`
// (`OidcProvider::start`), which also signs a person in over plain HTTP;
// browser tests fill the form below with Playwright.
//
// The people (password `password-<name>` each):
//
//   alice  sub a1b2-alice  alice@example.com    verified  ml-engineers, everyone
//   bob    sub b2c3-bob    bob@example.com      verified  auditors, everyone
//   carol  sub c3d4-carol  carol@other.example  verified  ml-engineers
//   dave   sub d4e5-dave   dave@example.com     NOT verified  (no groups)
//
// and the people of docs/registry.md's walk-through:
//
//   eve     sub e5f6-eve     eve@example.com     verified  ml-engineers, ml-leads
//   cora    sub f6a7-cora    cora@example.com    verified  ml-leads
//   dan     sub a7b8-dan     dan@example.com     verified  ml-leads
//   sam     sub b8c9-sam     sam@example.com     verified  data-science
//   audrey  sub c9d0-audrey  audrey@example.com  verified  auditors
//
// The flow: authorization code with PKCE (S256, required of every client),
// `nonce`, scopes `openid email profile groups`. The claims of the granted
// scopes (email, email_verified, name, groups) are put in the ID token
// itself (`conformIdTokenClaims: false`), not only behind userinfo. ID
// tokens are signed with RS256 by default, by an RSA key generated at
// start; an ES256 key is published too, for a client registered with
// `id_token_signed_response_alg: "ES256"`. Clients authenticate with
// client_secret_basic (the default) or client_secret_post.
//
// The login page: GET /interaction/:uid is a form with `login`,
// `password` and a submit button with id `submit`, posted to
// POST /interaction/:uid/login. A wrong password renders the form again
// with status 401 and a message; a right one signs the person in and
// consents for them (every scope and claim the client asked for is
// granted, see loadExistingGrant), so the one post redirects, through
// the provider's /auth resume, back to the client's redirect_uri.
// Everything is plain HTTP on loopback: the cookies are not `Secure`.

import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

const USERS = {
  alice: {
    sub: 'a1b2-alice',
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Engineer',
    groups: ['ml-engineers', 'everyone'],
  },
  bob: {
    sub: 'b2c3-bob',
    email: 'bob@example.com',
    email_verified: true,
    name: 'Bob Auditor',
    groups: ['auditors', 'everyone'],
  },
  carol: {
    sub: 'c3d4-carol',
    email: 'carol@other.example',
    email_verified: true,
    name: 'Carol Outsider',
    groups: ['ml-engineers'],
  },
  dave: {
    sub: 'd4e5-dave',
    email: 'dave@example.com',
    email_verified: false,
    name: 'Dave Unverified',
    groups: [],
  },
  eve: { sub: 'e5f6-eve', email: 'eve@example.com', email_verified: true, name: 'Eve', groups: ['ml-engineers', 'ml-leads'] },
  cora: { sub: 'f6a7-cora', email: 'cora@example.com', email_verified: true, name: 'Cora', groups: ['ml-leads'] },
  dan: { sub: 'a7b8-dan', email: 'dan@example.com', email_verified: true, name: 'Dan', groups: ['ml-leads'] },
  sam: { sub: 'b8c9-sam', email: 'sam@example.com', email_verified: true, name: 'Sam', groups: ['data-science'] },
  audrey: { sub: 'c9d0-audrey', email: 'audrey@example.com', email_verified: true, name: 'Audrey', groups: ['auditors'] },
};
const BY_SUB = new Map(Object.values(USERS).map((u) => [u.sub, u]));

function log(line) {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    config: { type: 'string' },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('--port N is required (1-65535)');
}
if (!args.config) {
  fail('--config FILE is required');
}
let config;
try {
  config = JSON.parse(readFileSync(args.config, 'utf8'));
} catch (e) {
  fail(`reading ${args.config}: ${e.message}`);
}
if (!Array.isArray(config.clients)) {
  fail(`${args.config}: "clients" must be an array`);
}
const clients = config.clients.map((c) => {
  if (typeof c.client_id !== 'string' || !Array.isArray(c.redirect_uris)) {
    fail(`${args.config}: each client needs client_id and redirect_uris`);
  }
  return {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...c,
  };
});

const issuer = `http://127.0.0.1:${port}`;

// Fresh signing keys on every start: RS256 first (the default), ES256 too.
function signingKey(type, options, alg) {
  const jwk = generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(jwk.n ?? jwk.x).digest('base64url').slice(0, 16);
  return { ...jwk, kid, alg, use: 'sig' };
}
const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

const provider = new Provider(issuer, {
  clients,
  jwks,
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
    // Plain HTTP: never `Secure` (oidc-provider sets it only for https
    // requests anyway).
    long: { httpOnly: true, sameSite: 'lax', secure: false },
    short: { httpOnly: true, sameSite: 'lax', secure: false },
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(_ctx, sub) {
    const user = BY_SUB.get(sub);
    if (!user) {
      return undefined;
    }
    return {
      accountId: sub,
      // The provider keeps only the claims of the granted scopes.
      async claims() {
        return { ...user };
      },
    };
  },
  // Consent is automatic: the grant of the signed-in person for this
  // client is extended with every OIDC scope and claim the request asks
  // for, so no consent prompt is ever shown (a native client's mandatory
  // one is answered by the interaction routes below).
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant || grant.accountId !== oidc.account.accountId) {
      grant = new oidc.provider.Grant({
        accountId: oidc.account.accountId,
        clientId: oidc.client.clientId,
      });
    }
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...oidc.requestParamClaims]);
    await grant.save();
    return grant;
  },
});

provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack ?? err}`));

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, message, login = '') {
  const notice = message ? `<p id="error" role="alert">${escape(message)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - test identity provider</title></head>
<body>
<h1>Sign in</h1>
<p>to continue to <span id="client">${escape(clientId)}</span></p>
${notice}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label>Username <input name="login" id="login" value="${escape(login)}" autofocus required></label>
<label>Password <input name="password" id="password" type="password" required></label>
<button type="submit" id="submit">Sign in</button>
</form>
</body>
</html>
`;
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw new Error('form body too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Request log, then the login page; everything else is oidc-provider's.
provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    await next();
  } finally {
    log(`${ctx.method} ${ctx.path} ${ctx.status} ${Date.now() - started}ms`);
  }
});

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(ctx.path);
  if (!match) {
    return next();
  }
  const [, uid, isLogin] = match;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (e) {
    ctx.status = 400;
    ctx.type = 'text/plain';
    ctx.body = `no such sign-in in progress: ${e.message}\n`;
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'text/plain';
    ctx.body = 'sign-in identifier mismatch\n';
    return undefined;
  }
  const clientId = details.params.client_id;

  if (!isLogin && ctx.method === 'GET') {
    if (details.prompt.name === 'consent') {
      // Already signed in: consent without asking (see loadExistingGrant).
      ctx.status = 303;
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { consent: {} }));
      return undefined;
    }
    ctx.type = 'html';
    ctx.body = loginPage(uid, clientId);
    return undefined;
  }
  if (isLogin && ctx.method === 'POST') {
    const form = await formBody(ctx.req);
    const login = form.get('login') ?? '';
    const user = Object.hasOwn(USERS, login) ? USERS[login] : undefined;
    if (!user || form.get('password') !== `password-${login}`) {
      log(`login refused for ${JSON.stringify(login)}`);
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, clientId, 'Wrong username or password.', login);
      return undefined;
    }
    log(`login of ${login} (${user.sub}) for ${clientId}`);
    const result = {
      login: { accountId: user.sub },
      consent: {},
    };
    ctx.status = 303;
    ctx.redirect(
      await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }),
    );
    return undefined;
  }
  ctx.status = 405;
  ctx.type = 'text/plain';
  ctx.body = 'method not allowed\n';
  return undefined;
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});
server.on('error', (e) => fail(`listening on 127.0.0.1:${port}: ${e.message}`));

function shutdown(signal) {
  log(`${signal}: exiting`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
