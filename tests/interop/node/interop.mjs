// Warden's token service against openid-client (an OAuth client no one
// here wrote), with every access token verified by jose through the
// served JWKS (createRemoteJWKSet on the metadata's jwks_uri).
//
// Inputs (environment; secrets stay out of argv):
//   INTEROP_ISSUER                 issuer URL, e.g. http://127.0.0.1:PORT
//   INTEROP_AUDIENCE               audience the clients registered (inference)
//   INTEROP_SERVICE_CLIENT_ID / INTEROP_SERVICE_CLIENT_SECRET
//                                  service client: client_credentials +
//                                  refresh_token, scopes "inference.invoke training.run",
//                                  role ml-engineer
//   INTEROP_AGENT_CLIENT_ID / INTEROP_AGENT_CLIENT_SECRET
//                                  agent client: token_exchange + refresh_token,
//                                  scope inference.invoke
//   INTEROP_SUBJECT_TOKEN          a Warden access token for INTEROP_SUBJECT
//                                  (aud INTEROP_AUDIENCE, scope inference.invoke)
//   INTEROP_SUBJECT                its sub, e.g. user:alice
//
// Usage: node interop.mjs   (after `npm ci` in this directory)
// Exit status 0 when every check passed; 1 with `FAIL: <what>` on stderr
// at the first failure. Every request has a timeout; nothing loops.

import { isDeepStrictEqual } from 'node:util'
import * as client from 'openid-client'
import * as jose from 'jose'

const TIMEOUT_S = 15
const SCOPE = 'inference.invoke'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

function fail(msg) {
  console.error(`interop (node/openid-client): FAIL: ${msg}`)
  process.exit(1)
}
function check(cond, msg) {
  if (!cond) fail(msg)
}
function ok(msg) {
  console.log(`  ok: ${msg}`)
}
function env(name) {
  const v = process.env[name]
  if (!v) fail(`environment variable ${name} is not set`)
  return v
}
const show = (v) => JSON.stringify(v)

// A hard stop for the whole run, in case a request hangs past its own timeout.
setTimeout(() => fail('the run took longer than 120 s'), 120_000).unref()

const ISS = env('INTEROP_ISSUER')
const AUD = env('INTEROP_AUDIENCE')
const SVC_ID = env('INTEROP_SERVICE_CLIENT_ID')
const SVC_SECRET = env('INTEROP_SERVICE_CLIENT_SECRET')
const AGENT_ID = env('INTEROP_AGENT_CLIENT_ID')
const AGENT_SECRET = env('INTEROP_AGENT_CLIENT_SECRET')
const SUBJECT_TOKEN = env('INTEROP_SUBJECT_TOKEN')
const SUBJECT = env('INTEROP_SUBJECT')

// The issuer is plain http on loopback: openid-client refuses http unless
// told otherwise (client configuration, not a server issue).
const discoveryOptions = (algorithm) => ({
  algorithm,
  execute: [client.allowInsecureRequests],
  timeout: TIMEOUT_S,
})

/** Runs `fn`, which must fail with the OAuth error `error`. */
async function expectOAuthError(fn, error, what) {
  try {
    await fn()
  } catch (e) {
    if (e instanceof client.ResponseBodyError) {
      check(e.error === error, `${what}: error ${show(e.error)} (${e.error_description}), expected ${show(error)}`)
      return e
    }
    if (e instanceof client.WWWAuthenticateChallengeError) {
      // oauth4webapi reports a 401 with a challenge before reading the body.
      check(error === 'invalid_client', `${what}: HTTP ${e.status} challenge, expected ${show(error)}`)
      const body = await e.response.json()
      check(body.error === error, `${what}: body ${show(body)}, expected ${show(error)}`)
      return e
    }
    fail(`${what}: ${e?.name}: ${e?.message} (${show(e?.cause)}), expected OAuth error ${show(error)}`)
  }
  fail(`${what}: succeeded, expected ${show(error)}`)
}

async function main() {
  console.log('interop (node/openid-client): start')
  const issuer = new URL(ISS)

  // --- Discovery: OpenID configuration and RFC 8414 give one document.
  const svcAuth = client.ClientSecretBasic(SVC_SECRET)
  const svcOidc = await client.discovery(issuer, SVC_ID, undefined, svcAuth, discoveryOptions('oidc'))
  const svc = await client.discovery(issuer, SVC_ID, undefined, svcAuth, discoveryOptions('oauth2'))
  const meta = svc.serverMetadata()
  check(meta.issuer === ISS, `metadata issuer ${show(meta.issuer)} != ${show(ISS)}`)
  check(isDeepStrictEqual(meta, svcOidc.serverMetadata()), 'openid-configuration and oauth-authorization-server differ')
  for (const f of ['token_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint']) {
    check(typeof meta[f] === 'string', `metadata has no ${f}`)
  }
  check(meta.grant_types_supported?.includes(TOKEN_EXCHANGE), 'metadata does not list the token-exchange grant')
  ok('discovery (oidc and oauth2 algorithms): same metadata, issuer matches')

  // --- jose verifies every access token through the served JWKS.
  const algorithms = meta.access_token_signing_alg_values_supported
  check(Array.isArray(algorithms) && algorithms.length > 0, 'metadata lists no access-token algorithms')
  const JWKS = jose.createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: TIMEOUT_S * 1000 })
  async function verify(token, { sub, clientId, scope = SCOPE, act }) {
    let result
    try {
      result = await jose.jwtVerify(token, JWKS, {
        issuer: ISS,
        audience: AUD,
        typ: 'at+jwt',
        algorithms,
        requiredClaims: ['exp', 'iat', 'nbf', 'jti', 'sub', 'client_id'],
      })
    } catch (e) {
      fail(`jose rejected the access token for ${sub}: ${e.code}: ${e.message}`)
    }
    const { payload, protectedHeader } = result
    check(protectedHeader.kid, 'access token header has no kid')
    check(payload.sub === sub, `sub ${show(payload.sub)} != ${show(sub)}`)
    check(payload.client_id === clientId, `client_id ${show(payload.client_id)} != ${show(clientId)}`)
    check(payload.scope === scope, `scope ${show(payload.scope)} != ${show(scope)}`)
    check(Array.isArray(payload.aud) && payload.aud.includes(AUD), `aud ${show(payload.aud)}`)
    check(isDeepStrictEqual(payload.act, act), `act ${show(payload.act)} != ${show(act)}`)
    // The check is real: a flipped signature bit fails.
    const [h, p, s] = token.split('.')
    const flipped = `${h}.${p}.${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`
    const tampered = await jose.jwtVerify(flipped, JWKS, { issuer: ISS, audience: AUD, algorithms }).then(
      () => 'accepted',
      (e) => e.code,
    )
    check(tampered === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', `tampered token: ${tampered}`)
    return payload
  }

  // --- client_credentials (client_secret_basic), RFC 8707 resource.
  const cc = await client.clientCredentialsGrant(svc, { scope: SCOPE, resource: AUD })
  check(cc.token_type === 'bearer', `token_type ${show(cc.token_type)}`)
  check(cc.expiresIn() > 0, `expires_in ${show(cc.expires_in)}`)
  check(cc.scope === SCOPE, `granted scope ${show(cc.scope)}`)
  check(typeof cc.refresh_token === 'string', 'no refresh_token for a client with the refresh_token grant')
  const ccClaims = await verify(cc.access_token, { sub: `svc:${SVC_ID}`, clientId: SVC_ID })
  check(ccClaims.roles?.includes('ml-engineer'), `roles ${show(ccClaims.roles)}`)
  ok('client_credentials (client_secret_basic, resource); jose verifies iss, aud, typ at+jwt via jwks_uri')

  await expectOAuthError(() => client.clientCredentialsGrant(svc, { scope: 'no.such.scope' }), 'invalid_scope', 'unknown scope')
  await expectOAuthError(
    () => client.clientCredentialsGrant(svc, { scope: SCOPE, resource: 'not-registered' }),
    'invalid_target',
    'unregistered resource',
  )
  const wrong = new client.Configuration(meta, SVC_ID, undefined, client.ClientSecretBasic(`${SVC_SECRET}x`))
  client.allowInsecureRequests(wrong)
  const e = await expectOAuthError(() => client.clientCredentialsGrant(wrong, { scope: SCOPE }), 'invalid_client', 'wrong secret')
  check(e.status === 401, `wrong secret: HTTP ${e.status}, expected 401`)
  ok('invalid_scope, invalid_target, invalid_client (401) reach openid-client as OAuth errors')

  // --- refresh_token: rotated, same subject and scope.
  const r1 = await client.refreshTokenGrant(svc, cc.refresh_token)
  check(typeof r1.refresh_token === 'string' && r1.refresh_token !== cc.refresh_token, 'refresh token was not rotated')
  await verify(r1.access_token, { sub: `svc:${SVC_ID}`, clientId: SVC_ID })
  ok('refresh_token grant: new access token, rotated refresh token')

  // --- introspection (RFC 7662).
  const live = await client.tokenIntrospection(svc, r1.access_token)
  check(live.active === true, `introspection of a live token: ${show(live)}`)
  check(live.sub === `svc:${SVC_ID}` && live.client_id === SVC_ID && live.scope === SCOPE, `introspection: ${show(live)}`)
  check(typeof live.exp === 'number' && live.exp > Date.now() / 1000, `introspection exp: ${show(live.exp)}`)
  const unknown = await client.tokenIntrospection(svc, 'not-a-token-warden-issued')
  check(isDeepStrictEqual({ ...unknown }, { active: false }), `introspection of an unknown token: ${show(unknown)}`)
  ok('introspection: live token active with sub/client_id/scope/exp; unknown token exactly {"active":false}')

  // --- revocation (RFC 7009).
  await client.tokenRevocation(svc, r1.refresh_token, { token_type_hint: 'refresh_token' })
  await expectOAuthError(() => client.refreshTokenGrant(svc, r1.refresh_token), 'invalid_grant', 'revoked refresh token')
  const afterFamily = await client.tokenIntrospection(svc, r1.access_token)
  check(isDeepStrictEqual({ ...afterFamily }, { active: false }), `access token of a revoked family: ${show(afterFamily)}`)
  const cc2 = await client.clientCredentialsGrant(svc, { scope: SCOPE })
  await client.tokenRevocation(svc, cc2.access_token, { token_type_hint: 'access_token' })
  const afterRevoke = await client.tokenIntrospection(svc, cc2.access_token)
  check(isDeepStrictEqual({ ...afterRevoke }, { active: false }), `revoked access token: ${show(afterRevoke)}`)
  await client.tokenRevocation(svc, 'not-a-token-warden-issued')
  ok('revocation: refresh token (family and its access tokens), access token, unknown token (200)')

  // --- token exchange (RFC 8693) by the agent, client_secret_post.
  const agent = await client.discovery(
    issuer,
    AGENT_ID,
    undefined,
    client.ClientSecretPost(AGENT_SECRET),
    discoveryOptions('oauth2'),
  )
  const exchangeParams = {
    subject_token: SUBJECT_TOKEN,
    subject_token_type: ACCESS_TOKEN_TYPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
    audience: AUD,
    scope: SCOPE,
  }
  const ex = await client.genericGrantRequest(agent, TOKEN_EXCHANGE, exchangeParams)
  check(ex.issued_token_type === ACCESS_TOKEN_TYPE, `issued_token_type ${show(ex.issued_token_type)}`)
  check(ex.token_type === 'bearer', `token_type ${show(ex.token_type)}`)
  check(ex.scope === undefined || ex.scope === SCOPE, `exchanged scope ${show(ex.scope)}`)
  const act = { sub: `agent:${AGENT_ID}` }
  await verify(ex.access_token, { sub: SUBJECT, clientId: AGENT_ID, act })
  ok(`token exchange: sub ${SUBJECT}, act ${show(act)}, issued_token_type access_token`)

  // The agent has the refresh_token grant, so the exchange returns one too.
  check(typeof ex.refresh_token === 'string', 'no refresh_token from the exchange for an agent with the refresh_token grant')
  const exr = await client.refreshTokenGrant(agent, ex.refresh_token)
  check(exr.refresh_token !== ex.refresh_token, 'exchanged refresh token was not rotated')
  await verify(exr.access_token, { sub: SUBJECT, clientId: AGENT_ID, act })
  ok('refresh of the exchanged token keeps sub and act')

  const exInfo = await client.tokenIntrospection(agent, ex.access_token)
  check(exInfo.active === true && exInfo.sub === SUBJECT, `introspection of the exchanged token: ${show(exInfo)}`)
  await client.tokenRevocation(agent, ex.access_token)
  const exGone = await client.tokenIntrospection(agent, ex.access_token)
  check(isDeepStrictEqual({ ...exGone }, { active: false }), `revoked exchanged token: ${show(exGone)}`)
  ok('introspection and revocation of the exchanged token by the agent (client_secret_post)')

  // RFC 8693 §2.2.2: an unacceptable subject_token is invalid_request.
  await expectOAuthError(
    () => client.genericGrantRequest(agent, TOKEN_EXCHANGE, { ...exchangeParams, subject_token: `${SUBJECT_TOKEN}x` }),
    'invalid_request',
    'tampered subject_token',
  )
  ok('token exchange with a tampered subject_token: invalid_request (RFC 8693 §2.2.2)')

  console.log('interop (node/openid-client): all checks passed')
}

main().then(
  () => process.exit(0),
  (e) => fail(`${e?.name}: ${e?.message}${e?.cause ? ` (${show(e.cause)})` : ''}\n${e?.stack ?? ''}`),
)
