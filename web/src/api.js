// The REST API as the UI uses it: JSON in and out, and Flink's error body
// ({"errors": [...]}) turned into an ApiError whose message is shown to the
// user. Every path is the API's own (Flink's v1 paths at the root).

export class ApiError extends Error {
  constructor(status, errors, path) {
    super(errors.join('\n'));
    this.status = status;
    this.errors = errors;
    this.path = path;
  }
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, [`the JobManager did not answer ${path}: ${e.message}`], path);
  }
  const text = await response.text();
  let body = text;
  if ((response.headers.get('Content-Type') || '').includes('json') && text !== '') {
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new ApiError(response.status, [`${path} answered malformed JSON: ${e.message}`], path);
    }
  }
  if (!response.ok) {
    const errors = body && Array.isArray(body.errors) && body.errors.length > 0
      ? body.errors.map(String)
      : [`${path} answered HTTP ${response.status}`];
    throw new ApiError(response.status, errors, path);
  }
  return body;
}

/** GET path; the parsed JSON (or the text of a non-JSON answer). */
export function get(path) {
  return send(path, { headers: { Accept: 'application/json' } });
}

/** A request with a JSON body (or none). */
export function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  } else if (method !== 'GET') {
    // An empty body, so that the browser sends "Content-Length: 0": the
    // server refuses a PATCH or DELETE that gives no length at all.
    init.body = '';
  }
  return send(path, init);
}

/** POST of a multipart form (uploads). */
export function postForm(path, form) {
  return send(path, { method: 'POST', body: form, headers: { Accept: 'application/json' } });
}

/** GET .../metrics?get=a,b: { name: number } (Flink sends values as strings). */
export async function metrics(path, names) {
  if (names.length === 0) return {};
  const list = await get(`${path}?get=${names.map(encodeURIComponent).join(',')}`);
  const out = {};
  for (const m of list) out[m.id] = Number(m.value);
  return out;
}

/** Polls an asynchronous operation (savepoint, stop) until it completes. */
export async function waitForOperation(path, onProgress, isAlive, intervalMs = 1000) {
  for (;;) {
    const answer = await get(path);
    const status = answer.status && answer.status.id;
    onProgress(status, answer.operation);
    if (status === 'COMPLETED') return answer.operation || {};
    if (!isAlive()) return null;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
