/**
 * The left-sidebar panel "Models & endpoints": services (live state badge, target, models,
 * scoring URI with copy, actions) and models grouped by name (versions, tags, framework,
 * size, used by), a search filter, refreshed when the workspace's event feed moves.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { api, formatBytes, IModel, IService } from './api';
import { h } from './dom';

export interface ISidebarActions {
  logs(name: string): void;
  test(name: string): void;
  swagger(name: string): void;
  update(service: IService, models: IModel[]): Promise<void>;
  remove(name: string): Promise<void>;
}

const POLL_MS = 2500; // the event feed: one indexed max() query per tick
const STATE_EVERY = 4; // live states (a crash logs no event): every 4th tick

export class ModelsSidebar extends Widget {
  constructor(private actions: ISidebarActions) {
    super();
    this.id = 'mlmanage-sidebar';
    this.addClass('mlm-sidebar');
    this.title.caption = 'Models & endpoints';
    this._search = h('input', {
      class: 'mlm-search jp-mod-styled',
      type: 'search',
      placeholder: 'Filter models and endpoints',
      'aria-label': 'Filter models and endpoints',
      oninput: () => this.render()
    });
    this._status = h('div', { class: 'mlm-status', role: 'status' });
    this._body = h('div', { class: 'mlm-body' });
    this.node.append(
      h(
        'div',
        { class: 'mlm-header' },
        h('h2', {}, 'Models & endpoints'),
        h(
          'button',
          {
            class: 'mlm-button mlm-refresh',
            title: 'Refresh',
            'aria-label': 'Refresh',
            onclick: () => void this.refresh()
          },
          '⟳'
        )
      ),
      this._search,
      this._status,
      this._body
    );
    this._timer = window.setInterval(() => void this.tick(), POLL_MS);
    void this.refresh();
  }

  protected onAfterShow(): void {
    void this.refresh(); // ticks skip while hidden: catch up at once
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  get services(): IService[] {
    return this._services;
  }

  get models(): IModel[] {
    return this._models;
  }

  /** Re-read models and services now. */
  async refresh(): Promise<void> {
    try {
      const [feed, models, services] = await Promise.all([
        api.events(0),
        api.models(),
        api.services()
      ]);
      this._last = feed.last;
      this._models = models;
      this._services = services;
      this._error = '';
    } catch (e) {
      this._error = `Cannot reach the mlmanage server extension: ${(e as Error).message}`;
    }
    this.render();
  }

  private async tick(): Promise<void> {
    if (this._busy || !this.isVisible) {
      return;
    }
    this._busy = true;
    try {
      this._ticks++;
      const feed = await api.events(this._last);
      const transitioning = this._services.some(s => s.state === 'Transitioning');
      if (feed.last !== this._last) {
        await this.refresh();
      } else if (transitioning || this._ticks % STATE_EVERY === 0) {
        this._services = await api.services();
        this.render();
      }
    } catch {
      /* the next tick tries again */
    } finally {
      this._busy = false;
    }
  }

  private render(): void {
    const q = this._search.value.trim().toLowerCase();
    const match = (...texts: string[]): boolean =>
      !q || texts.some(t => t.toLowerCase().includes(q));
    this._status.textContent = this._error;
    this._status.classList.toggle('mlm-error', !!this._error);
    const focused = document.activeElement as HTMLElement | null;
    const refocus = focused && this._body.contains(focused) ? focused.dataset.key : undefined;

    const services = this._services.filter(s => match(s.name, s.computeType, s.state, ...s.models));
    const svcList = h('ul', { class: 'mlm-list', 'aria-label': 'Endpoints' });
    for (const s of services) {
      svcList.append(this.serviceItem(s));
    }
    const groups = new Map<string, IModel[]>();
    for (const m of this._models) {
      if (!match(m.name, m.id, m.modelFramework ?? '', ...Object.entries(m.tags).map(([k, v]) => `${k}=${v}`))) {
        continue;
      }
      groups.set(m.name, [...(groups.get(m.name) ?? []), m]);
    }
    const modelList = h('ul', { class: 'mlm-list', 'aria-label': 'Models' });
    for (const [name, versions] of groups) {
      modelList.append(this.modelGroup(name, versions));
    }
    this._body.replaceChildren(
      h('h3', { class: 'mlm-section' }, `Endpoints (${services.length})`),
      services.length ? svcList : h('p', { class: 'mlm-empty' }, q ? 'No endpoint matches.' : 'No endpoints deployed.'),
      h('h3', { class: 'mlm-section' }, `Models (${groups.size})`),
      groups.size ? modelList : h('p', { class: 'mlm-empty' }, q ? 'No model matches.' : 'No models registered.')
    );
    if (refocus) {
      (this._body.querySelector(`[data-key="${CSS.escape(refocus)}"]`) as HTMLElement | null)?.focus();
    }
  }

  private serviceItem(s: IService): HTMLElement {
    const bad = s.state === 'Failed' || s.state === 'Unhealthy';
    const act = (label: string, title: string, fn: () => void, cls = ''): HTMLElement =>
      h(
        'button',
        {
          class: `mlm-button ${cls}`,
          title,
          'data-key': `${s.name}/${label}`,
          'data-action': label.toLowerCase(),
          onclick: fn
        },
        label
      );
    return h(
      'li',
      {
        class: `mlm-service${bad ? ' mlm-service-bad' : ''}`,
        'data-name': s.name,
        'data-state': s.state
      },
      h(
        'div',
        { class: 'mlm-row' },
        h('span', { class: 'mlm-name' }, s.name),
        h('span', { class: `mlm-badge mlm-state-${s.state}`, title: s.error ?? s.state }, s.state)
      ),
      h(
        'div',
        { class: 'mlm-meta' },
        `${s.computeType} · ${s.models.join(', ') || 'no model'}${s.authEnabled ? ' · key auth' : ''}`
      ),
      s.error && bad ? h('div', { class: 'mlm-error-text' }, s.error) : null,
      s.scoringUri
        ? h(
            'div',
            { class: 'mlm-uri' },
            h('code', { title: s.scoringUri }, s.scoringUri),
            h(
              'button',
              {
                class: 'mlm-button mlm-copy',
                title: 'Copy the scoring URI',
                'aria-label': `Copy the scoring URI of ${s.name}`,
                'data-key': `${s.name}/copy`,
                onclick: () => Clipboard.copyToSystem(s.scoringUri ?? '')
              },
              'Copy'
            )
          )
        : null,
      h(
        'div',
        { class: 'mlm-actions' },
        act('Logs', 'Open the logs (follows new lines)', () => this.actions.logs(s.name)),
        act('Test', 'Open the endpoint console', () => this.actions.test(s.name)),
        act('Update', 'Update to another model version', () => void this.actions.update(s, this._models)),
        act('Swagger', "Open the service's OpenAPI document", () => this.actions.swagger(s.name)),
        act('Delete', 'Delete this service', () => void this.actions.remove(s.name), 'mlm-danger')
      )
    );
  }

  private modelGroup(name: string, versions: IModel[]): HTMLElement {
    const rows = versions.map(m => {
      const used = [...m.usedBy.services.map(s => `service ${s}`), ...m.usedBy.images.map(i => `image ${i}`)];
      const tags = Object.entries(m.tags).map(([k, v]) => h('span', { class: 'mlm-tag' }, `${k}=${v}`));
      return h(
        'li',
        { class: 'mlm-model-version', 'data-id': m.id, tabindex: 0, title: m.description ?? m.id },
        h(
          'div',
          { class: 'mlm-row' },
          h('span', { class: 'mlm-version' }, `v${m.version}`),
          h(
            'span',
            { class: 'mlm-meta' },
            [m.modelFramework, formatBytes(m.size), `${m.fileCount} file${m.fileCount === 1 ? '' : 's'}`]
              .filter(Boolean)
              .join(' · ')
          )
        ),
        tags.length ? h('div', { class: 'mlm-tags' }, ...tags) : null,
        h('div', { class: 'mlm-meta mlm-used' }, used.length ? `used by ${used.join(', ')}` : 'not used')
      );
    });
    return h(
      'li',
      { class: 'mlm-model-group', 'data-name': name },
      h('div', { class: 'mlm-name' }, name, h('span', { class: 'mlm-count' }, ` (${versions.length})`)),
      h('ul', { class: 'mlm-versions' }, ...rows)
    );
  }

  private _search: HTMLInputElement;
  private _status: HTMLElement;
  private _body: HTMLElement;
  private _timer: number;
  private _busy = false;
  private _ticks = 0;
  private _last = -1;
  private _error = '';
  private _models: IModel[] = [];
  private _services: IService[] = [];
}
