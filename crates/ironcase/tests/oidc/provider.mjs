// A real OpenID provider for the single sign-on tests: panva's oidc-provider
// (certified), configured here and nothing else written by us.
//
//   node provider.mjs <port> <client_id> <client_secret> <redirect_uri>
//
// Prints "listening" once it answers. Any login name works at its
// development login form (any password); alice, bob and dave have verified
// addresses and groups, anyone else an unverified address and no groups.
// Test-only: POST /__test/rotate signs with a new key from then on (the old
// one still published), for the key-rotation test.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const ACCOUNTS = {
  alice: { email: 'alice@example.test', email_verified: true, groups: ['responders', 'admins'] },
  bob: { email: 'bob@example.test', email_verified: true, groups: ['responders'] },
  dave: { email: 'dave@example.test', email_verified: true, groups: ['responders'] },
  mallory: { email: 'mallory@elsewhere.test', email_verified: true, groups: ['admins'] },
};

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}
let keys = [newKey()];

function makeProvider() {
  const p = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // Scope claims in the ID token too, not only from userinfo.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const a = ACCOUNTS[sub] ?? { email: `${sub}@example.test`, email_verified: false, groups: [] };
      return { accountId: sub, async claims() { return { sub, ...a }; } };
    },
    cookies: { keys: ['ironcase-test-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    jwks: { keys },
    // Consent is given: a test logs in, it does not click through.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email groups');
      await grant.save();
      return grant;
    },
  });
  p.on('server_error', (ctx, err) => console.error('server_error', err));
  return p;
}

let handler = makeProvider().callback();
const server = createServer((req, res) => {
  if (req.url === '/__test/rotate' && req.method === 'POST') {
    keys = [newKey(), ...keys];
    handler = makeProvider().callback();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  handler(req, res);
});
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
