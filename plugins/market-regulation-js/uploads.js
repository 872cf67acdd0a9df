/**
 * The department's upload of materials in chunks, as pure functions (as the Rust adapter's
 * `uploads`): what to send and how to read the answers. Nothing here calls the host.
 *
 * - `POST /v2/files` `{requestId, code, name, mediaType, size, sm3, chunkSize}` opens a file →
 *   `201`/`200` `{fileId, chunkSize, chunks, received: [n…], status: UPLOADING|COMPLETE}`;
 * - `PUT /v2/files/{fileId}/chunks/{n}`, the chunk's bytes with `X-Chunk-SM3` → `200`;
 * - `POST /v2/files/{fileId}/complete` `{sm3, size}` → `200 {fileId, status: COMPLETE, sm3, size}`.
 *
 * Refusals (`4xx {error, message}`) say the bytes or the transfer went wrong, never the
 * applicant: `protocol` errors, so the gateway sends again (from the open, which says what the
 * department has).
 */

import { AdapterFailure, percentEncode } from '../../sdk-js/gov-adapter/index.js';

export const FILES_PATH = '/v2/files';
/** The chunk size the adapter asks for: 1 MiB (the department takes 64 KiB to 8 MiB). */
export const CHUNK_SIZE = 1 << 20;
export const CHUNK_SM3_HEADER = 'X-Chunk-SM3';
/**
 * The largest chunk the adapter accepts the department to ask for: its own limit, 8 MiB. (The
 * Rust adapter digests a chunk as it reads it and accepts 64 MiB; this one hands a whole chunk to
 * the host's SM3, so it holds one chunk at a time.)
 */
const MAX_CHUNK = 8 << 20;

/** The `POST /v2/files` body for one file of an application. */
export function openBody(requestId, material, file) {
  return {
    requestId,
    code: material.code,
    name: material.name,
    mediaType: file.mediaType,
    size: Number(file.size),
    sm3: file.sm3,
    chunkSize: CHUNK_SIZE,
  };
}

/** The error of an upload answer that is not 2xx: 5xx `unavailable`, every refusal `protocol`. */
export function uploadError(status, body) {
  if (status >= 500) return AdapterFailure.unavailable(`department answered HTTP ${status}`);
  let error = '';
  let message = '';
  try {
    const r = JSON.parse(new TextDecoder().decode(body));
    error = typeof r.error === 'string' ? r.error : '';
    message = typeof r.message === 'string' ? r.message : '';
  } catch {
    // Not a refusal document: the status says it.
  }
  return AdapterFailure.protocol(`department refused the upload: HTTP ${status} ${error} ${message}`);
}

function answer(status, body, what) {
  if (status < 200 || status >= 300) throw uploadError(status, body);
  try {
    const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    if (value && typeof value === 'object') return value;
  } catch {
    // Reported below.
  }
  throw unreadable(what, 'not a JSON object');
}

const unreadable = (what, why) => AdapterFailure.protocol(`unreadable answer to ${what}: ${why}`);

/** Read the answer of `POST /v2/files` for a file of `size` bytes: `{fileId, chunkSize, received, complete}`. */
export function readOpened(status, body, size) {
  const a = answer(status, body, 'the open');
  if (typeof a.fileId !== 'string' || a.fileId === '') throw unreadable('the open', 'an empty fileId');
  if (!Number.isInteger(a.chunkSize) || a.chunkSize < 1 || a.chunkSize > MAX_CHUNK) {
    throw unreadable('the open', `a chunk size of ${a.chunkSize}`);
  }
  const received = a.received ?? [];
  if (!Array.isArray(received) || !received.every((n) => Number.isInteger(n) && n >= 0)) {
    throw unreadable('the open', 'a received list that is not chunk numbers');
  }
  const chunks = Math.max(Math.ceil(Number(size) / a.chunkSize), 1);
  const beyond = received.find((n) => n >= chunks);
  if (beyond !== undefined) throw unreadable('the open', `chunk ${beyond} received of a file of ${chunks}`);
  let complete;
  if (a.status === 'UPLOADING') complete = false;
  else if (a.status === 'COMPLETE') complete = true;
  else throw unreadable('the open', `status ${a.status}`);
  return { fileId: a.fileId, chunkSize: a.chunkSize, received: new Set(received), complete };
}

export const chunkPath = (fileId, n) => `${FILES_PATH}/${percentEncode(fileId)}/chunks/${n}`;
export const completePath = (fileId) => `${FILES_PATH}/${percentEncode(fileId)}/complete`;

/** Read the answer to a chunk. */
export function readChunk(status, body) {
  if (status < 200 || status >= 300) throw uploadError(status, body);
}

/** The `POST /v2/files/{fileId}/complete` body. */
export const completeBody = (file) => ({ sm3: file.sm3, size: Number(file.size) });

/** Read the answer to the completion: the department must have reassembled this very file. */
export function readCompleted(status, body, file) {
  const a = answer(status, body, 'the completion');
  const sm3 = typeof a.sm3 === 'string' ? a.sm3 : '';
  if (a.status !== 'COMPLETE' || sm3.toLowerCase() !== file.sm3.toLowerCase() || a.size !== Number(file.size)) {
    throw unreadable(
      'the completion',
      `it does not confirm ${file.size} bytes with SM3 ${file.sm3}: ${JSON.stringify(a)}`,
    );
  }
}

/**
 * The application's `materials`: each file by the department's id for it (`uploaded`, a Map by
 * material code), each licence by its identifier, each promise with its date.
 */
export function materialsField(materials, uploaded) {
  return materials.map((m) => {
    const entry = { code: m.code, name: m.name };
    const { tag, val } = m.source;
    if (tag === 'file') entry.fileId = uploaded.get(m.code) ?? '';
    else if (tag === 'licence') entry.licence = { id: val.id, kind: val.kind, number: val.number };
    else entry.promised = { due: val ?? null };
    return entry;
  });
}
