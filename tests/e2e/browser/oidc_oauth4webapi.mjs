// SPDX-License-Identifier: Apache-2.0
// oidc_oauth4webapi.mjs — oauth4webapi 3 (npm) as the relying party of
// tokend, with its defaults (OpenID Connect discovery, HTTPS only, its
// strict ID token and userinfo checks), and Debian's headless Chromium as
// the user's browser; run by tests/e2e/test_oidc_browser.py, which asserts
// on the JSON printed on stdout (harness.mjs).
//
//   NODE_EXTRA_CA_CERTS=tokend-dev.crt SIGNIN_PASSWORD=... \
//   node tests/e2e/browser/oidc_oauth4webapi.mjs --issuer URL --client-id ID \
//        --rp http://127.0.0.1:PORT --out DIR --username NAME
//
// Steps: discoveryRequest/processDiscoveryResponse (the issuer must match);
// the authorization URL with S256 PKCE, state, nonce and max_age; Chromium
// signs in; validateAuthResponse (state and the RFC 9207 iss);
// authorizationCodeGrantRequest/processAuthorizationCodeResponse (the ID
// token's iss, aud, azp, exp, iat, nonce, and auth_time against max_age)
// and validateApplicationLevelSignature (its signature against the JWKS);
// userInfoRequest/processUserInfoResponse (sub must match); a silent
// re-authorization (prompt=none, id_token_hint) whose ID token must be
// refused for a nonce the RP did not expect;
// refreshTokenGrantRequest/processRefreshTokenResponse and the signature
// again; the end_session_endpoint with id_token_hint,
// post_logout_redirect_uri and state, followed by Chromium; then the old
// tokens must be refused, through the library and plainly.

import * as oauth from 'oauth4webapi';

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
  out.library = 'oauth4webapi';
  const rp = await startRP(args.rp);
  try {
    await flow({ args, password, page, shot, rp });
  } finally {
    await rp.close();
  }
}

async function flow({ args, password, page, shot, rp }) {
  const issuer = new URL(args.issuer);
  const client = { client_id: args['client-id'] };
  const clientAuth = oauth.None();

  // 1. discovery: /.well-known/openid-configuration (the default algorithm)
  let as;
  await step('discovery', async () => {
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer));
    return {
      issuer: as.issuer,
      supports_pkce: (as.code_challenge_methods_supported || []).includes('S256'),
      end_session_endpoint: as.end_session_endpoint,
      userinfo_endpoint: as.userinfo_endpoint,
    };
  });

  // 2. the authorization request, and the browser signs in
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const authUrl = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: rp.redirectUri,
    scope: SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    max_age: String(MAX_AGE),
  })) {
    authUrl.searchParams.set(k, v);
  }
  let cbUrl;
  await step('signin', async () => {
    const r = await browserSignIn(page, rp, authUrl, args, password, shot);
    cbUrl = r.url; // it holds the code: not in the output
    return r.login;
  });

  // 3. the callback (state, iss), the code for tokens, the ID token
  let params;
  await step('callback', () => {
    params = oauth.validateAuthResponse(as, client, cbUrl, state);
  });
  let tokens;
  let codeResponse;
  await step('code_grant', async () => {
    codeResponse = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      params,
      rp.redirectUri,
      verifier,
    );
    tokens = await oauth.processAuthorizationCodeResponse(as, client, codeResponse, {
      expectedNonce: nonce,
      maxAge: MAX_AGE,
      requireIdToken: true,
    });
  });
  await step('code_grant_signature', () => oauth.validateApplicationLevelSignature(as, codeResponse));
  const claims = oauth.getValidatedIdTokenClaims(tokens);
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

  // 4. userinfo: its sub must be the ID token's
  await step('userinfo', async () =>
    oauth.processUserInfoResponse(
      as,
      client,
      claims.sub,
      await oauth.userInfoRequest(as, client, tokens.access_token),
    ),
  );

  // 5. a negative control: a silent re-authorization (prompt=none, the ID
  // token as hint) whose code is exchanged expecting another nonce: the
  // library must refuse its ID token
  const verifier2 = oauth.generateRandomCodeVerifier();
  const state2 = oauth.generateRandomState();
  const silentUrl = new URL(authUrl);
  silentUrl.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier2));
  silentUrl.searchParams.set('state', state2);
  silentUrl.searchParams.set('nonce', oauth.generateRandomNonce());
  silentUrl.searchParams.delete('max_age');
  silentUrl.searchParams.set('prompt', 'none');
  silentUrl.searchParams.set('id_token_hint', tokens.id_token);
  let silentCb;
  await step('silent', async () => {
    const r = await browserSilent(page, rp, silentUrl);
    silentCb = r.url;
    return r.seen;
  });
  out.steps.wrong_nonce = await expectRefusal(async () =>
    oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        oauth.validateAuthResponse(as, client, silentCb, state2),
        rp.redirectUri,
        verifier2,
      ),
      { expectedNonce: oauth.generateRandomNonce(), requireIdToken: true },
    ),
  );

  // 6. refresh: a new ID token
  let refreshed;
  let refreshResponse;
  await step('refresh', async () => {
    refreshResponse = await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token);
    refreshed = await oauth.processRefreshTokenResponse(as, client, refreshResponse);
  });
  const claims2 = oauth.getValidatedIdTokenClaims(refreshed) || null;
  out.steps.refresh = {
    token_type: refreshed.token_type,
    scope: refreshed.scope,
    has_id_token: typeof refreshed.id_token === 'string',
    id_token_header: refreshed.id_token ? jwtHeader(refreshed.id_token) : null,
    claims: claims2,
    new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
  };
  if (refreshed.id_token) {
    await step('refresh_signature', () => oauth.validateApplicationLevelSignature(as, refreshResponse));
  }
  out.secrets.access_token_2 = refreshed.access_token;
  out.secrets.refresh_token_2 = refreshed.refresh_token;
  await step('userinfo_after_refresh', async () =>
    oauth.processUserInfoResponse(
      as,
      client,
      claims.sub,
      await oauth.userInfoRequest(as, client, refreshed.access_token),
    ),
  );

  // 7. RP-initiated logout with the newest ID token as the hint
  const logoutState = oauth.generateRandomState();
  const endUrl = new URL(as.end_session_endpoint);
  endUrl.searchParams.set('id_token_hint', refreshed.id_token || tokens.id_token);
  endUrl.searchParams.set('post_logout_redirect_uri', rp.postLogoutUri);
  endUrl.searchParams.set('state', logoutState);
  endUrl.searchParams.set('client_id', client.client_id);
  out.steps.end_session_url = {
    endpoint: `${endUrl.origin}${endUrl.pathname}`,
    params: [...endUrl.searchParams.keys()].sort(),
  };
  const seen = await step('logout', () => browserLogout(page, rp, endUrl, issuer.origin, shot));
  seen.state_ok = seen.state === logoutState;

  // 8. the tokens of that sign-in are dead: through the library ...
  out.steps.after_logout = {
    userinfo: await expectRefusal(async () =>
      oauth.processUserInfoResponse(
        as,
        client,
        claims.sub,
        await oauth.userInfoRequest(as, client, refreshed.access_token),
      ),
    ),
    refresh: await expectRefusal(async () =>
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token),
      ),
    ),
    // ... and plainly
    userinfo_plain: await probeUserinfo(as.userinfo_endpoint, tokens.access_token),
    refresh_plain: await probeRefresh(as.token_endpoint, client.client_id, refreshed.refresh_token),
  };
}

await run(REQUIRED, { ignoreHTTPSErrors: true }, steps);
