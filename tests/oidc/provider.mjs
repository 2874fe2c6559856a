// A real OpenID Connect provider for the sign-in tests: node provider.mjs PORT CONFIG.json
// CONFIG: {"clients": [...oidc-provider client metadata], "audience": "...", "accounts": {"login": {claims}},
//          "keys": [private JWKs it signs with]} (the tests hold the key too, to write tokens the hub must refuse).
// Its own login page (oidc-provider's development interactions: any account name below, any password) is what the
// browser tests go through. Access tokens for `audience` are JWTs carrying the account's groups and tenant.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const account = (id) => config.accounts[id] && {
  accountId: id,
  async claims() {
    return { sub: id, email_verified: true, ...config.accounts[id] };
  },
};

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  findAccount: (ctx, id) => account(id),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
    tenant: ['tenant'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'tenant', 'offline_access'],
  conformIdTokenClaims: false, // the ID token carries the scopes' claims (email, groups, tenant)
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid email profile groups tenant',
        audience: config.audience,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async extraTokenClaims(ctx, token) {
    const found = token.accountId && config.accounts[token.accountId];
    return found ? { email: found.email, groups: found.groups, tenant: found.tenant } : {};
  },
  ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Grant: 3600, Interaction: 600, AuthorizationCode: 60 },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
