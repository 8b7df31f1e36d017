// The JSON API as the back office uses it: every call carries the signed-in user's bearer token
// in the Authorization header. The token lives in this tab's sessionStorage: readable by this
// origin's scripts only (no other origin, no other tab, gone when the tab closes), never in a
// cookie, so the browser never sends it by itself and a forged cross-site request has none.

const SESSION_KEY = 'usualstore.session';

/** An API error: HTTP status, the stable `code`, the message, the request id. */
export class ApiError extends Error {
  constructor(status, code, message, requestId = null, field = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.field = field;
  }

  /** Whether the token is gone: sign in again. */
  get signedOut() {
    return this.status === 401 && this.code !== 'invalid_credentials';
  }
}

export const session = {
  /** `{token, expires_at, user}` of this tab, unless absent, malformed or expired. */
  load() {
    let stored = null;
    try {
      stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    } catch {
      stored = null;
    }
    if (
      !stored ||
      typeof stored.token !== 'string' ||
      typeof stored.user !== 'object' ||
      stored.user === null ||
      typeof stored.user.role !== 'string' ||
      !(Date.parse(stored.expires_at) > Date.now())
    ) {
      sessionStorage.removeItem(SESSION_KEY);
      return null;
    }
    return stored;
  },
  save(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/**
 * `method path` with an optional JSON body; resolves to the parsed JSON (null for 204), rejects
 * with an ApiError carrying the API's code, or `network_error` / `invalid_response` when the
 * answer never came or was not the API's.
 */
export async function call(method, path, body, token) {
  const headers = {Accept: 'application/json'};
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = {method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', 'the store did not answer; check the connection and try again');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data === 'object' ? data.error : null;
    if (error && typeof error.code === 'string') {
      throw new ApiError(response.status, error.code, String(error.message ?? ''), error.request_id ?? null, error.field ?? null);
    }
    throw new ApiError(response.status, `http_${response.status}`, `the store answered HTTP ${response.status} without an error body`);
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(response.status, 'invalid_response', 'the store answered with something that is not JSON');
  }
  return data;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** The id as a path segment (ids are integers; anything else cannot reach another path). */
export function idPath(id) {
  return encodeURIComponent(String(id));
}
