// The API client and the session.
//
// The access token lives in memory only. The refresh token lives in sessionStorage: a reload
// of this tab keeps the session, other tabs and windows do not share it, and it never goes
// into a URL. The access token is renewed a little before it expires (POST /auth/refresh
// rotates the pair); when the server refuses a refresh, the session ends at once, everywhere
// in the app.

// The scripts are served from <root>/app/<version>/, and the API lives at <root>/.
const ROOT = new URL("../../", import.meta.url);
const REFRESH_KEY = "nimbus.refresh_token";
const RETRY_MS = 15_000; // after a refresh that failed for want of a network or a server
export const SESSION_ENDED = "Your session has ended. Please log in again.";

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.name = "ApiError";
    this.status = status;
    this.code = typeof body?.code === "string" ? body.code : "";
  }
}

// What a request cut short by the end of the session throws: the app already shows that the
// session ended, so whoever made the request shows nothing more.
export class SessionEnded extends Error {
  constructor() {
    super(SESSION_ENDED);
    this.name = "SessionEnded";
  }
}

function describe(status, body) {
  const message =
    typeof body?.message === "string"
      ? body.message
      : status
        ? `The server answered ${status}; try again`
        : "Something went wrong; try again";
  const fields = Array.isArray(body?.errors) ? body.errors : [];
  const details = fields.map((error) => {
    const field = String(error?.field ?? "").replace(/^body\.?/, "");
    return field ? `${field}: ${error?.message}` : String(error?.message);
  });
  return details.length ? `${message}: ${details.join("; ")}` : message;
}

let access = null; // {token, renewAt}
let timer = 0;
let refreshing = null; // the one refresh in flight: two at once would replay a rotated token
let generation = 0; // bumped when a session ends, so late answers are dropped
let onEnd = () => {};
const inFlight = new Set();

export function onSessionEnd(callback) {
  onEnd = callback;
}

function storedRefreshToken() {
  try {
    return sessionStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

export function hasSession() {
  return storedRefreshToken() !== null;
}

function begin(pair) {
  // Renew a fifth of the lifetime early (a minute at most): a slow answer still comes in time.
  const lifetime = Number(pair.expires_in) * 1000;
  const wait = Math.max(1000, lifetime - Math.min(60_000, lifetime / 5));
  access = { token: pair.access_token, renewAt: Date.now() + wait };
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
  schedule(wait);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch(() => {}), ms);
}

export function endSession(message) {
  generation += 1;
  clearTimeout(timer);
  access = null;
  try {
    sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    // Nothing stored, nothing to remove.
  }
  for (const controller of inFlight) controller.abort();
  inFlight.clear();
  onEnd(message);
}

// One HTTP exchange; resolves to {status, ok, headers, data} with the JSON body read.
async function send(method, path, { body, headers = {}, token = null } = {}) {
  const url = new URL(path, ROOT);
  if (url.origin !== ROOT.origin) throw new ApiError(0, { message: "Refused a link off this site" });
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    cache: "no-store",
    credentials: "omit",
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  const controller = new AbortController();
  init.signal = controller.signal;
  inFlight.add(controller);
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null; // not JSON: a proxy's error page, say
    }
    return { status: response.status, ok: response.ok, headers: response.headers, data };
  } catch {
    if (controller.signal.aborted) throw new SessionEnded();
    throw new ApiError(0, {
      message: "The server cannot be reached; check your connection and try again",
    });
  } finally {
    inFlight.delete(controller);
  }
}

// A request as the signed-in user (or, with auth: false, as anyone). An access token that
// is about to expire is renewed first; a 401 gets one renewal and one retry.
export async function request(method, path, { auth = true, ...options } = {}) {
  const started = generation;
  if (!auth) return checked(await send(method, path, options), started);
  if (!access || Date.now() >= access.renewAt) await refresh(); // the timer ran late
  let response = await send(method, path, { ...options, token: currentToken(started) });
  if (response.status === 401) {
    await refresh();
    response = await send(method, path, { ...options, token: currentToken(started) });
    if (response.status === 401) {
      endSession(SESSION_ENDED);
      throw new SessionEnded();
    }
  }
  return checked(response, started);
}

function currentToken(started) {
  if (started !== generation || !access) throw new SessionEnded();
  return access.token;
}

function checked(response, started) {
  if (started !== generation) throw new SessionEnded();
  if (!response.ok) throw new ApiError(response.status, response.data);
  return response;
}

export function refresh() {
  refreshing ??= renew().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function renew() {
  const started = generation;
  const token = storedRefreshToken();
  if (!token) {
    endSession(SESSION_ENDED);
    throw new SessionEnded();
  }
  let response;
  try {
    response = await send("POST", "auth/refresh", { body: { refresh_token: token } });
  } catch (error) {
    if (error instanceof ApiError) schedule(RETRY_MS); // offline: keep the session for now
    throw error;
  }
  if (started !== generation) throw new SessionEnded();
  if (response.status === 429 || response.status >= 500) {
    schedule(RETRY_MS);
    throw new ApiError(response.status, response.data);
  }
  if (!response.ok) {
    endSession(SESSION_ENDED);
    throw new SessionEnded();
  }
  begin(response.data);
}

// Resolves to null once logged in, or, for an account with two-step login, to the second
// step it asks for: {mfaToken, expiresIn, methods}, for secondStep with a code or
// passkeyStep.
export async function logIn(username, password) {
  const response = await send("POST", "login", { body: { username, password } });
  if (!response.ok) throw new ApiError(response.status, response.data);
  if (response.data?.mfa_required === true) {
    const methods = Array.isArray(response.data.methods) ? response.data.methods : ["totp"];
    return {
      mfaToken: response.data.mfa_token,
      expiresIn: Number(response.data.expires_in),
      methods,
    };
  }
  begin(response.data);
  return null;
}

export async function secondStep(mfaToken, code) {
  const body = { mfa_token: mfaToken, code };
  const response = await send("POST", "auth/mfa", { body });
  if (!response.ok) throw new ApiError(response.status, response.data);
  begin(response.data);
}

// Passkeys (WebAuthn). The API speaks JSON with base64url fields; the browser's
// credentials API takes and gives ArrayBuffers.

function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
}

function toBase64url(buffer) {
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list ?? []).map((c) => ({ ...c, id: fromBase64url(c.id) }));
}

function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  const json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
  };
  if (credential.authenticatorAttachment) {
    json.authenticatorAttachment = credential.authenticatorAttachment;
  }
  return json;
}

// The browser's ceremony; its refusal (cancelled, timed out, no passkey) as an ApiError.
async function ceremony(run) {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    throw new ApiError(0, { message: "This browser has no passkeys" });
  }
  try {
    const credential = await run();
    if (!credential) throw new Error("no credential");
    return credentialJSON(credential);
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // The authenticator holds one of the account's passkeys already (the options excluded
    // them): one device has one passkey per account.
    const message =
      error?.name === "InvalidStateError"
        ? "This device has a passkey for your account already"
        : "No passkey was used: try again";
    throw new ApiError(0, { message, code: "passkey_cancelled" });
  }
}

function get(options) {
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  };
  return ceremony(() => navigator.credentials.get({ publicKey }));
}

// A passkey's answer for a change to the account's factors (the `passkey` of its proof).
export async function passkeyProof() {
  const { data } = await request("POST", "users/me/passkeys/verify/options");
  const credential = await get(data.options);
  return { challenge_token: data.challenge_token, credential };
}

// A new passkey; `proof` is the password (and a code or a passkey's answer) it takes.
export async function createPasskey(name, proof) {
  const { data } = await request("POST", "users/me/passkeys/options", { body: proof });
  const options = data.options;
  const publicKey = {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
  const credential = await ceremony(() => navigator.credentials.create({ publicKey }));
  const body = { challenge_token: data.challenge_token, credential };
  if (name) body.name = name;
  return request("POST", "users/me/passkeys", { body });
}

export async function passkeyLogIn() {
  const started = await send("POST", "auth/passkey/options", { body: {} });
  if (!started.ok) throw new ApiError(started.status, started.data);
  const credential = await get(started.data.options);
  const body = { challenge_token: started.data.challenge_token, credential };
  const response = await send("POST", "auth/passkey", { body });
  if (!response.ok) throw new ApiError(response.status, response.data);
  begin(response.data);
}

export async function passkeyStep(mfaToken) {
  const started = await send("POST", "auth/mfa/passkey/options", { body: { mfa_token: mfaToken } });
  if (!started.ok) throw new ApiError(started.status, started.data);
  const credential = await get(started.data.options);
  const body = { mfa_token: mfaToken, challenge_token: started.data.challenge_token, credential };
  const response = await send("POST", "auth/mfa", { body });
  if (!response.ok) throw new ApiError(response.status, response.data);
  begin(response.data);
}

export async function logOut(message) {
  try {
    if (hasSession()) await request("POST", "auth/logout");
  } catch {
    // The session ends here whatever the server said.
  } finally {
    endSession(message);
  }
}

// A tab long in the background runs its timers late; catch up when it is seen again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && access && Date.now() >= access.renewAt) {
    refresh().catch(() => {});
  }
});

// The next page's path from a `Link: <...>; rel="next"` header, or null.
export function nextPage(headers) {
  const link = headers.get("Link");
  const match = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  return match ? match[1] : null;
}
