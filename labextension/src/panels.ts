/** Main-area panels: a service's logs (following), the endpoint console, a JSON viewer. */
import { Widget } from '@lumino/widgets';

import { api, followLogs, prettyJson, swaggerExample } from './api';
import { h } from './dom';

const MAX_LINES = 5000;

/** The service's log, old lines first, then each new line as the service writes it. */
export class LogsPanel extends Widget {
  constructor(readonly service: string) {
    super();
    this.addClass('mlm-panel');
    this.addClass('mlm-logs');
    this.id = `mlmanage-logs-${service}`;
    this.title.label = `Logs: ${service}`;
    this.title.closable = true;
    this._status = h('div', { class: 'mlm-status', role: 'status' }, 'connecting…');
    this._pre = h('pre', { class: 'mlm-log-lines', tabindex: 0, 'aria-label': `Logs of ${service}` });
    this.node.append(this._status, this._pre);
    void this.follow();
  }

  dispose(): void {
    this._abort.abort();
    super.dispose();
  }

  private async follow(): Promise<void> {
    try {
      this._status.textContent = 'following new lines';
      await followLogs(this.service, line => this.append(line), this._abort.signal);
      this._status.textContent = 'the log stream ended';
    } catch (e) {
      if (!this._abort.signal.aborted) {
        this._status.textContent = `logs unavailable: ${(e as Error).message}`;
        this._status.classList.add('mlm-error');
      }
    }
  }

  private append(line: string): void {
    const atEnd = this._pre.scrollTop + this._pre.clientHeight >= this._pre.scrollHeight - 4;
    this._pre.append(h('div', { class: 'mlm-log-line' }, line));
    while (this._pre.childElementCount > MAX_LINES) {
      this._pre.firstElementChild?.remove();
    }
    if (atEnd) {
      this._pre.scrollTop = this._pre.scrollHeight;
    }
  }

  private _abort = new AbortController();
  private _status: HTMLElement;
  private _pre: HTMLElement;
}

/** A request editor (prefilled from the swagger example) and the response with status and
 * latency; the request goes through the Jupyter server, which adds the service's key. */
export class ConsolePanel extends Widget {
  constructor(readonly service: string) {
    super();
    this.addClass('mlm-panel');
    this.addClass('mlm-console');
    this.id = `mlmanage-console-${service}`;
    this.title.label = `Test: ${service}`;
    this.title.closable = true;
    this._editor = h('textarea', {
      class: 'mlm-editor jp-mod-styled',
      spellcheck: false,
      'aria-label': 'Request body (JSON)',
      onkeydown: (e: KeyboardEvent) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          void this.send();
        }
      }
    });
    this._send = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept mlm-send', onclick: () => void this.send() },
      'Send'
    );
    this._result = h('div', { class: 'mlm-result-status', role: 'status' });
    this._body = h('pre', { class: 'mlm-result-body', tabindex: 0, 'aria-label': 'Response body' });
    this.node.append(
      h('label', { class: 'mlm-label' }, `POST to ${service} (Ctrl+Enter sends)`),
      this._editor,
      h('div', { class: 'mlm-row' }, this._send, this._result),
      this._body
    );
    void this.prefill();
  }

  private async prefill(): Promise<void> {
    let example: unknown = undefined;
    try {
      example = swaggerExample(await api.swagger(this.service));
    } catch {
      /* no swagger: an empty object */
    }
    if (!this._editor.value) {
      this._editor.value = prettyJson(example ?? {});
    }
  }

  async send(): Promise<void> {
    this._send.disabled = true;
    this._result.textContent = 'sending…';
    this._result.className = 'mlm-result-status';
    try {
      const r = await api.score(this.service, this._editor.value);
      const ok = r.status >= 200 && r.status < 300;
      this._result.textContent = `${r.status === 0 ? 'unreachable' : `HTTP ${r.status}`} · ${r.latencyMs.toFixed(1)} ms`;
      this._result.classList.add(ok ? 'mlm-ok' : 'mlm-error');
      this._body.textContent = typeof r.body === 'string' ? r.body : prettyJson(r.body);
    } catch (e) {
      this._result.textContent = (e as Error).message;
      this._result.classList.add('mlm-error');
      this._body.textContent = '';
    } finally {
      this._send.disabled = false;
    }
  }

  private _editor: HTMLTextAreaElement;
  private _send: HTMLButtonElement;
  private _result: HTMLElement;
  private _body: HTMLElement;
}

/** Read-only pretty JSON (the swagger document). */
export class JsonPanel extends Widget {
  constructor(id: string, label: string, load: () => Promise<unknown>) {
    super();
    this.addClass('mlm-panel');
    this.id = id;
    this.title.label = label;
    this.title.closable = true;
    const pre = h('pre', { class: 'mlm-json', tabindex: 0 }, 'loading…');
    this.node.append(pre);
    load().then(
      doc => (pre.textContent = prettyJson(doc)),
      e => {
        pre.textContent = (e as Error).message;
        pre.classList.add('mlm-error');
      }
    );
  }
}
