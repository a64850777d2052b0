/**
 * Client of the server extension's REST API (`<base_url>mlmanage/api/...`, see
 * mlmanage_jupyter/serverext/handlers.py). ServerConnection adds Jupyter's token and XSRF
 * header, so every call is authenticated exactly like JupyterLab's own.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IModel {
  id: string;
  name: string;
  version: number;
  description: string | null;
  tags: Record<string, string>;
  modelFramework: string | null;
  modelFrameworkVersion: string | null;
  createdTime: string;
  size: number;
  fileCount: number;
  usedBy: { images: string[]; services: string[] };
}

export interface IService {
  name: string;
  state: string;
  error: string | null;
  computeType: string;
  scoringUri: string | null;
  swaggerUri: string | null;
  models: string[];
  image: string | null;
  authEnabled: boolean;
  createdTime: string;
  updatedTime: string;
}

export interface IScoreResult {
  status: number;
  latencyMs: number;
  body: unknown;
  requestId: string | null;
}

/** An error answered by the API: `{"error": message}` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();

export function apiUrl(...parts: string[]): string {
  return URLExt.join(settings().baseUrl, 'mlmanage', 'api', ...parts.map(encodeURIComponent));
}

export async function request<T>(parts: string[], init: RequestInit = {}, query = ''): Promise<T> {
  const s = settings();
  const resp = await ServerConnection.makeRequest(apiUrl(...parts) + query, init, s);
  const text = await resp.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!resp.ok) {
    throw new ApiError((data && data.error) || `${resp.status} ${resp.statusText}`, resp.status);
  }
  return data as T;
}

export const api = {
  models: () => request<{ models: IModel[] }>(['models']).then(r => r.models),
  services: () => request<{ services: IService[] }>(['services']).then(r => r.services),
  service: (name: string) => request<IService>(['services', name]),
  events: (since: number) =>
    request<{ last: number; events: unknown[] }>(['events'], {}, `?since=${since}&limit=1`),
  swagger: (name: string) => request<any>(['services', name, 'swagger']),
  score: (name: string, body: string) =>
    request<IScoreResult>(['services', name, 'score'], { method: 'POST', body }),
  update: (name: string, models: string[]) =>
    request<IService>(['services', name, 'update'], {
      method: 'POST',
      body: JSON.stringify({ models })
    }),
  remove: (name: string) => request<null>(['services', name], { method: 'DELETE' }),
  readme: () => request<{ markdown: string }>(['readme'])
};

/**
 * Follow a service's logs (Server-Sent Events over a fetch stream, so Jupyter's auth
 * header goes along): `onLine` gets each line, old ones first. Stops when `signal` aborts.
 */
export async function followLogs(
  name: string,
  onLine: (line: string) => void,
  signal: AbortSignal
): Promise<void> {
  const resp = await ServerConnection.makeRequest(
    apiUrl('services', name, 'logs') + '?follow=1&tail=2000',
    { signal },
    settings()
  );
  if (!resp.ok || !resp.body) {
    const text = await resp.text();
    let msg = text;
    try {
      msg = JSON.parse(text).error;
    } catch {
      /* not JSON */
    }
    throw new ApiError(msg || `${resp.status}`, resp.status);
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('event: ')) {
        event = line.slice(7);
      } else if (line.startsWith('data: ')) {
        const data = JSON.parse(line.slice(6));
        if (event === 'line') {
          onLine(data);
        } else if (event === 'error') {
          onLine(`[logs unavailable: ${data}]`);
        }
      } else if (line === '') {
        event = 'message';
      }
    }
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The example request of an OpenAPI 3 (ours) or Swagger 2 (Azure's) document, if any. */
export function swaggerExample(doc: any): unknown {
  const post = doc?.paths?.['/score']?.post;
  const media = post?.requestBody?.content ?? {};
  for (const m of Object.values<any>(media)) {
    if (m?.example !== undefined) {
      return m.example;
    }
    if (m?.schema?.example !== undefined) {
      return m.schema.example;
    }
  }
  const def = doc?.definitions?.ServiceInput;
  return def?.example;
}

/** Indented JSON with arrays of numbers/strings kept on one line (readable tensors). */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /\[\s*((?:-?[\d.eE+-]+|"[^"\n]*"|true|false|null)(?:,\s*(?:-?[\d.eE+-]+|"[^"\n]*"|true|false|null))*)\s*\]/g,
    (_m: string, inner: string) => `[${inner.replace(/,\s+/g, ', ')}]`
  );
}
