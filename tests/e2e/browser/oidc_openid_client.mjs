// SPDX-License-Identifier: Apache-2.0
// oidc_openid_client.mjs — openid-client 6 (npm) as the relying party of
// tokend, with its defaults (OpenID Connect discovery, not the 'oauth2'
// algorithm; no allowInsecureRequests), and Debian's headless Chromium as
// the user's browser; run by tests/e2e/test_oidc_browser.py, which asserts
// on the JSON printed on stdout (harness.mjs).
//
//   NODE_EXTRA_CA_CERTS=tokend-dev.crt SIGNIN_PASSWORD=... \
//   node tests/e2e/browser/oidc_openid_client.mjs --issuer URL --client-id ID \
//        --rp http://127.0.0.1:PORT --out DIR --username NAME
//
// Steps: discovery; the authorization URL with S256 PKCE, state, nonce and
// max_age; Chromium signs in; authorizationCodeGrant (state, iss, PKCE,
// and the ID token: iss, aud, azp, exp, iat, nonce, auth_time against
// max_age, and its signature against the JWKS, which
// enableNonRepudiationChecks adds to the defaults); fetchUserInfo (sub
// must match); a silent re-authorization (prompt=none, id_token_hint)
// whose ID token must be refused for a nonce the RP did not expect;
// refreshTokenGrant (the new ID token checked against the
// first); buildEndSessionUrl with id_token_hint, post_logout_redirect_uri
// and state, followed by Chromium; then the old tokens: fetchUserInfo and
// refreshTokenGrant must be refused, and so must plain requests.

import * as client from 'openid-client';

import { out, run } from './harness.mjs';
import {
  REQUIRED,
  SCOPE,
  browserLogout,
  browserSignIn,
  browserSilent,
  expectRefusal,
  jwtHeader,
  probeRefresh,
  probeUserinfo,
  startRP,
  step,
} from './oidc_rp.mjs';

const MAX_AGE = 600;

async function steps({ args, password, page, shot }) {
  out.library = 'openid-client';
  const rp = await startRP(args.rp);
  try {
    await flow({ args, password, page, shot, rp });
  } finally {
    await rp.close();
  }
}

async function flow({ args, password, page, shot, rp }) {
  const issuer = new URL(args.issuer);
  // 1. discovery: /.well-known/openid-configuration; a public client
  let config;
  await step('discovery', async () => {
    config = await client.discovery(issuer, args['client-id'], undefined, client.None());
  });
  const meta = config.serverMetadata();
  out.steps.discovery = {
    issuer: meta.issuer,
    supports_pkce: meta.supportsPKCE(),
    end_session_endpoint: meta.end_session_endpoint,
    userinfo_endpoint: meta.userinfo_endpoint,
  };
  // ID token signatures checked against the JWKS, on top of the defaults
  client.enableNonRepudiationChecks(config);

  // 2. the authorization request, and the browser signs in
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: rp.redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    max_age: String(MAX_AGE),
  });
  let cbUrl;
  await step('signin', async () => {
    const r = await browserSignIn(page, rp, authUrl, args, password, shot);
    cbUrl = r.url; // it holds the code: not in the output
    return r.login;
  });

  // 3. the code for tokens; the library validates the ID token
  let tokens;
  await step('code_grant', async () => {
    tokens = await client.authorizationCodeGrant(config, cbUrl, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
      maxAge: MAX_AGE,
    });
  });
  const claims = tokens.claims();
  out.steps.code_grant = {
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expires_in,
    has_refresh_token: typeof tokens.refresh_token === 'string',
    id_token_header: jwtHeader(tokens.id_token),
    claims,
    nonce_ok: claims.nonce === nonce,
  };
  out.secrets = { access_token: tokens.access_token, refresh_token: tokens.refresh_token };

  // 4. userinfo: the library checks its sub against the ID token's
  await step('userinfo', () => client.fetchUserInfo(config, tokens.access_token, claims.sub));

  // 5. a negative control: a silent re-authorization (prompt=none, the ID
  // token as hint) whose code is exchanged expecting another nonce: the
  // library must refuse its ID token
  const verifier2 = client.randomPKCECodeVerifier();
  const state2 = client.randomState();
  const silentUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: rp.redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier2),
    code_challenge_method: 'S256',
    state: state2,
    nonce: client.randomNonce(),
    prompt: 'none',
    id_token_hint: tokens.id_token,
  });
  let silentCb;
  await step('silent', async () => {
    const r = await browserSilent(page, rp, silentUrl);
    silentCb = r.url;
    return r.seen;
  });
  out.steps.wrong_nonce = await expectRefusal(() =>
    client.authorizationCodeGrant(config, silentCb, {
      pkceCodeVerifier: verifier2,
      expectedState: state2,
      expectedNonce: client.randomNonce(),
      idTokenExpected: true,
    }),
  );

  // 6. refresh: a new ID token, checked against the first one
  let refreshed;
  await step('refresh', async () => {
    refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  });
  out.steps.refresh = {
    token_type: refreshed.token_type,
    scope: refreshed.scope,
    has_id_token: typeof refreshed.id_token === 'string',
    id_token_header: refreshed.id_token ? jwtHeader(refreshed.id_token) : null,
    claims: refreshed.claims() || null,
    new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
  };
  out.secrets.access_token_2 = refreshed.access_token;
  out.secrets.refresh_token_2 = refreshed.refresh_token;
  await step('userinfo_after_refresh', () => client.fetchUserInfo(config, refreshed.access_token, claims.sub));

  // 7. RP-initiated logout with the newest ID token as the hint
  const logoutState = client.randomState();
  const endUrl = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token || tokens.id_token,
    post_logout_redirect_uri: rp.postLogoutUri,
    state: logoutState,
  });
  out.steps.end_session_url = {
    endpoint: `${endUrl.origin}${endUrl.pathname}`,
    params: [...endUrl.searchParams.keys()].sort(),
  };
  const seen = await step('logout', () => browserLogout(page, rp, endUrl, issuer.origin, shot));
  seen.state_ok = seen.state === logoutState;

  // 8. the tokens of that sign-in are dead: through the library ...
  out.steps.after_logout = {
    userinfo: await expectRefusal(() => client.fetchUserInfo(config, refreshed.access_token, claims.sub)),
    refresh: await expectRefusal(() => client.refreshTokenGrant(config, refreshed.refresh_token)),
    // ... and plainly
    userinfo_plain: await probeUserinfo(meta.userinfo_endpoint, tokens.access_token),
    refresh_plain: await probeRefresh(meta.token_endpoint, args['client-id'], refreshed.refresh_token),
  };
}

await run(REQUIRED, { ignoreHTTPSErrors: true }, steps);
