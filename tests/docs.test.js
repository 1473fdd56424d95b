'use strict';
// The words next to the code: the repo refers to nothing outside itself, the docs' links lead to
// files that exist, and an image version the docs quote is the one compose pins. Reads files only.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./lib/helpers');

const SKIP_DIRS = new Set(['.git', 'node_modules', 'dist', 'coverage', 'results']);
/** The one allowed outside reference: the stack runs (tests/stack/*.sh) call the podman-stack tool beside the repo. */
const mayNameTheTool = (f) => f === '.ci/run' || /^tests\/stack\/[\w-]+\.sh$/.test(f);

function files(dir = ROOT, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name) || entry.name === '.env') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files(full, out);
    else if (entry.isFile() && fs.statSync(full).size < 512 * 1024) out.push(path.relative(ROOT, full));
  }
  return out;
}
const read = (f) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const DOCS = ['README.md', 'cloudflared/README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).map((f) => `docs/${f}`)];

test('nothing refers to files outside the repo (only the smoke run names the podman-stack tool)', () => {
  const outside = /\.\.\/shared\/|\bshared\/(reference|notes|tools)\/|\/work\/|ollama-api\.md/;
  const wrong = [];
  for (const f of files()) {
    if (f === 'tests/docs.test.js' || /\.(png|jpg|ico|lock)$/.test(f)) continue;
    read(f).split('\n').forEach((line, i) => {
      if (!outside.test(line)) return;
      if (mayNameTheTool(f) && /shared\/tools\/podman-stack/.test(line) && !/\/work\//.test(line)) return;
      wrong.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
    });
  }
  assert.deepEqual(wrong, []);
});

test('relative links in the docs lead to files of the repo', () => {
  const wrong = [];
  for (const doc of DOCS) {
    for (const [, target] of read(doc).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const resolved = path.normalize(path.join(path.dirname(doc), target));
      if (!fs.existsSync(path.join(ROOT, resolved))) wrong.push(`${doc}: ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('an image version the docs quote is the one compose pins', () => {
  const pins = new Map();
  for (const f of ['docker-compose.yml', ...fs.readdirSync(path.join(ROOT, 'compose')).filter((c) => c.endsWith('.yml')).map((c) => `compose/${c}`), 'docker-compose.gpu.yml']) {
    for (const [, image, tag] of read(f).matchAll(/^\s+image:\s*([a-z0-9./-]+):(\S+)\s*$/gm)) pins.set(image, tag);
  }
  assert.ok(pins.get('ollama/ollama'), 'compose pins ollama/ollama');
  const wrong = [];
  for (const doc of DOCS) {
    for (const [image, tag] of pins) {
      const quoted = new RegExp(`(?<![\\w/.:-])${image.replace(/[./]/g, '\\$&')}:(v?\\d+\\.\\d+[\\w.-]*)`, 'g');
      for (const [, seen] of read(doc).matchAll(quoted)) if (seen !== tag) wrong.push(`${doc}: ${image}:${seen}, compose pins ${tag}`);
    }
  }
  // the admin examples show the version Ollama reports for that image
  for (const [, v] of read('docs/admin.md').matchAll(/"version": "([\d.]+)"/g)) {
    if (v !== pins.get('ollama/ollama')) wrong.push(`docs/admin.md: "version": "${v}", compose pins ollama/ollama:${pins.get('ollama/ollama')}`);
  }
  assert.deepEqual(wrong, []);
});
