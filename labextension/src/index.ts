/**
 * mlmanage-jupyter's JupyterLab extension: the "Models & endpoints" sidebar, main-area
 * panels (logs, endpoint console, swagger, README), commands, a Launcher card and a
 * Help-menu link. Everything goes through the server extension's REST API (./api.ts).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { api, IModel, IService } from './api';
import { ConsolePanel, JsonPanel, LogsPanel } from './panels';
import { ModelsSidebar } from './sidebar';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161"><path d="M12 2 3 7v10l9 5 9-5V7l-9-5zm0 2.3 6.7 3.7L12 11.7 5.3 8 12 4.3zM5 9.7l6 3.3v6.7l-6-3.3V9.7zm8 10V13l6-3.3v6.7l-6 3.3z"/></g>
</svg>`;
export const modelsIcon = new LabIcon({ name: 'mlmanage:models', svgstr: ICON_SVG });

const CMD = {
  registry: 'mlmanage:open-registry',
  console: 'mlmanage:open-console',
  logs: 'mlmanage:open-logs',
  swagger: 'mlmanage:open-swagger',
  quickstart: 'mlmanage:open-quickstart',
  readme: 'mlmanage:open-readme'
};
const QUICKSTART = 'notebooks/01-quickstart.ipynb';
const CATEGORY = 'Model management';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlmanage-jupyter:plugin',
  description: 'Models & endpoints sidebar for mlmanage-jupyter',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ILauncher, IMainMenu, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null,
    restorer: ILayoutRestorer | null
  ) => {
    const opened = new Map<string, MainAreaWidget>();
    const open = (key: string, make: () => Widget): void => {
      let w = opened.get(key);
      if (!w || w.isDisposed) {
        const content = make();
        w = new MainAreaWidget({ content });
        w.id = `${content.id}-area`;
        w.title.label = content.title.label;
        w.title.icon = modelsIcon;
        w.title.closable = true;
        opened.set(key, w);
        app.shell.add(w, 'main');
      }
      app.shell.activateById(w.id);
    };

    const sidebar: ModelsSidebar = new ModelsSidebar({
      logs: name => void app.commands.execute(CMD.logs, { name }),
      test: name => void app.commands.execute(CMD.console, { name }),
      swagger: name => void app.commands.execute(CMD.swagger, { name }),
      update: (s, models) => updateService(s, models, sidebar),
      remove: name => removeService(name, sidebar)
    });
    sidebar.title.icon = modelsIcon;
    app.shell.add(sidebar, 'left', { rank: 450 });
    restorer?.add(sidebar, sidebar.id);

    app.commands.addCommand(CMD.registry, {
      label: 'Open model registry',
      caption: 'Models & endpoints: the registered models and deployed web services',
      icon: modelsIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
        return sidebar.refresh();
      }
    });
    app.commands.addCommand(CMD.console, {
      label: args => (args.name ? `Test endpoint ${args.name}` : 'Open endpoint console'),
      caption: 'Send a request to a web service and see the answer, status and latency',
      icon: modelsIcon,
      execute: async args => {
        const name = (args.name as string) || (await pickService(sidebar));
        if (name) {
          open(`console:${name}`, () => new ConsolePanel(name));
        }
      }
    });
    app.commands.addCommand(CMD.logs, {
      label: args => `Logs of ${args.name ?? 'a service'}`,
      execute: args => open(`logs:${args.name}`, () => new LogsPanel(args.name as string))
    });
    app.commands.addCommand(CMD.swagger, {
      label: args => `Swagger of ${args.name ?? 'a service'}`,
      execute: args => {
        const name = args.name as string;
        open(`swagger:${name}`, () => new JsonPanel(`mlmanage-swagger-${name}`, `Swagger: ${name}`, () => api.swagger(name)));
      }
    });
    app.commands.addCommand(CMD.quickstart, {
      label: 'Open quickstart tutorial',
      caption: `Open ${QUICKSTART}: train, register, deploy, call, update`,
      icon: modelsIcon,
      execute: async args => {
        const path = (args.path as string) || QUICKSTART;
        try {
          await app.serviceManager.contents.get(path, { content: false });
        } catch {
          await showErrorMessage(
            'Quickstart not found',
            `There is no ${path} under the folder JupyterLab serves. Start JupyterLab in a clone of mlmanage-jupyter to get the tutorials.`
          );
          return;
        }
        return app.commands.execute('docmanager:open', { path });
      }
    });
    app.commands.addCommand(CMD.readme, {
      label: 'mlmanage-jupyter README',
      caption: "mlmanage-jupyter's documentation",
      icon: modelsIcon,
      execute: () =>
        open('readme', () => {
          const w = new Widget();
          w.id = 'mlmanage-readme';
          w.title.label = 'mlmanage-jupyter README';
          w.addClass('mlm-panel');
          w.addClass('mlm-readme');
          void api.readme().then(
            async r => {
              const renderer = rendermime.createRenderer('text/markdown');
              await renderer.renderModel(rendermime.createModel({ data: { 'text/markdown': r.markdown } }));
              w.node.append(renderer.node);
            },
            e => (w.node.textContent = (e as Error).message)
          );
          return w;
        })
    });

    for (const command of [CMD.registry, CMD.console, CMD.quickstart, CMD.readme]) {
      palette?.addItem({ command, category: CATEGORY });
    }
    launcher?.add({ command: CMD.registry, category: 'Other', rank: 1 });
    launcher?.add({ command: CMD.quickstart, category: 'Other', rank: 2 });
    mainMenu?.helpMenu.addGroup([{ command: CMD.readme }], 60);
  }
};

async function pickService(sidebar: ModelsSidebar): Promise<string | null> {
  const services = await api.services();
  if (!services.length) {
    await showErrorMessage('No endpoint', 'No web service is deployed in this workspace yet.');
    return null;
  }
  const r = await InputDialog.getItem({
    title: 'Open endpoint console',
    label: 'Service',
    items: services.map(s => s.name)
  });
  void sidebar.refresh();
  return r.button.accept ? r.value : null;
}

async function updateService(s: IService, models: IModel[], sidebar: ModelsSidebar): Promise<void> {
  const names = new Set(s.models.map(m => m.split(':')[0]));
  const choices = models.filter(m => names.has(m.name) && !s.models.includes(m.id)).map(m => m.id);
  if (!choices.length) {
    await showErrorMessage('Nothing to update to', `${s.name} already serves the only version(s) of ${[...names].join(', ')}.`);
    return;
  }
  const r = await InputDialog.getItem({
    title: `Update ${s.name}`,
    label: `Serve instead of ${s.models.join(', ')}`,
    items: choices
  });
  if (!r.button.accept || !r.value) {
    return;
  }
  const chosen = r.value;
  const name = chosen.split(':')[0];
  const next = [...s.models.filter(m => m.split(':')[0] !== name), chosen];
  const done = api.update(s.name, next);
  Notification.promise(done as Promise<any>, {
    pending: { message: `Updating ${s.name} to ${chosen} (rolling)…`, options: { autoClose: false } },
    success: { message: () => `${s.name} now serves ${next.join(', ')}`, options: { autoClose: 4000 } },
    error: { message: (e: unknown) => `Update of ${s.name} failed: ${(e as Error).message}` }
  });
  await done.catch(() => undefined);
  await sidebar.refresh();
}

async function removeService(name: string, sidebar: ModelsSidebar): Promise<void> {
  const r = await showDialog({
    title: `Delete ${name}?`,
    body: `The web service ${name} stops and is removed. Its models and image stay registered.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  if (!r.button.accept) {
    return;
  }
  try {
    await api.remove(name);
    Notification.success(`${name} deleted`, { autoClose: 3000 });
  } catch (e) {
    await showErrorMessage(`Cannot delete ${name}`, (e as Error).message);
  }
  await sidebar.refresh();
}

export default plugin;
