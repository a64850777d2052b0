// Build lib/ (tsc output) into ../mlmanage_jupyter/labextension (package.json's
// jupyterlab.outputDir) with @jupyterlab/builder, against the JupyterLab core metadata of
// @jupyterlab/core-meta: Node only, no Python or `jupyter` command needed.
// It also copies install.json (how JupyterLab tells users the extension came with a pip
// package) into the output, which is what the wheel ships.
// Usage: node build-labextension.js [--development]
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const modules = path.join(__dirname, 'node_modules');
const core = path.join(modules, '.mlmanage-core');
fs.mkdirSync(core, { recursive: true });
fs.copyFileSync(path.join(modules, '@jupyterlab', 'core-meta', 'core.package.json'), path.join(core, 'package.json'));
execFileSync(
  process.execPath,
  [path.join(modules, '@jupyterlab', 'builder', 'lib', 'build-labextension.js'), '--core-path', core, ...process.argv.slice(2), __dirname],
  { stdio: 'inherit' }
);
const outputDir = path.resolve(__dirname, require('./package.json').jupyterlab.outputDir);
fs.copyFileSync(path.join(__dirname, 'install.json'), path.join(outputDir, 'install.json'));
